import { jest } from '@jest/globals';
import { Batcher, multipleAckFits } from './batcher.js';

describe('Batcher', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('sends a batch once it holds size items, without waiting', () => {
    const sent: number[][] = [];
    const batcher = new Batcher<number>({ size: 3, timeoutMs: 1000 }, (b) => sent.push(b));
    for (let n = 1; n <= 7; n++) batcher.add(n);
    expect(sent).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    // The rest waits for the timeout, counted from its first item.
    jest.advanceTimersByTime(999);
    expect(sent).toHaveLength(2);
    jest.advanceTimersByTime(1);
    expect(sent).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
  });

  it('sends a partial batch timeoutMs after its first item, and on flush()', () => {
    const sent: number[][] = [];
    const batcher = new Batcher<number>({ size: 100, timeoutMs: 50 }, (b) => sent.push(b));
    batcher.add(1);
    jest.advanceTimersByTime(30);
    batcher.add(2);
    jest.advanceTimersByTime(20);
    expect(sent).toEqual([[1, 2]]);
    batcher.add(3);
    batcher.flush();
    batcher.flush();
    expect(sent).toEqual([[1, 2], [3]]);
    // The flushed batch's timer is gone with it.
    jest.advanceTimersByTime(1000);
    expect(sent).toEqual([[1, 2], [3]]);
  });

  it('discards the items a closed channel took back, and sends the others', () => {
    const sent: number[][] = [];
    const batcher = new Batcher<number>({ size: 10, timeoutMs: 50 }, (b) => sent.push(b));
    for (const n of [1, 2, 3, 4]) batcher.add(n);
    expect(batcher.discard((n) => n % 2 === 0)).toEqual([2, 4]);
    jest.advanceTimersByTime(50);
    expect(sent).toEqual([[1, 3]]);
    batcher.add(5);
    expect(batcher.discard(() => true)).toEqual([5]);
    jest.advanceTimersByTime(50);
    expect(sent).toEqual([[1, 3]]);
  });
});

describe('multipleAckFits', () => {
  it('fits when the batch is every unsettled delivery up to its last tag', () => {
    expect(multipleAckFits(new Set([1, 2, 3]), [1, 2, 3])).toBe(true);
    expect(multipleAckFits(new Set([4, 5, 6, 7, 8]), [5, 4, 6])).toBe(true);
  });

  it('does not fit when another unsettled delivery lies below the last tag', () => {
    // 2 is failing on its own (its copy not yet confirmed): a multiple ack up to 3 would ack it.
    expect(multipleAckFits(new Set([1, 2, 3]), [1, 3])).toBe(false);
    // Another batch holds 1..3; this one is 4..6.
    expect(multipleAckFits(new Set([1, 2, 3, 4, 5, 6]), [4, 5, 6])).toBe(false);
  });

  it('does not fit a single delivery or one already settled', () => {
    expect(multipleAckFits(new Set([1]), [1])).toBe(false);
    expect(multipleAckFits(new Set([2, 3]), [1, 2, 3])).toBe(false);
  });
});

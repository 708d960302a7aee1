import { InMemoryStreamOffsetStore, OffsetTracker } from './stream-offsets.js';

describe('OffsetTracker', () => {
  it('commits only up to the oldest delivery still in its handler', () => {
    const tracker = new OffsetTracker();
    for (const offset of [5, 6, 7]) tracker.delivered(offset);
    expect(tracker.settle(6)).toBeUndefined();
    expect(tracker.settle(5)).toBe(6);
    expect(tracker.settle(7)).toBe(7);
  });

  it('starts afresh after a reset', () => {
    const tracker = new OffsetTracker();
    tracker.delivered(1);
    tracker.reset();
    tracker.delivered(1);
    expect(tracker.settle(1)).toBe(1);
  });
});

describe('InMemoryStreamOffsetStore', () => {
  it('keeps an offset per consumer and stream', () => {
    const store = new InMemoryStreamOffsetStore();
    store.save('A.a', 'events', 3);
    store.save('B.b', 'events', 9);
    expect(store.load('A.a', 'events')).toBe(3);
    expect(store.load('B.b', 'events')).toBe(9);
    expect(store.load('A.a', 'other')).toBeUndefined();
  });
});

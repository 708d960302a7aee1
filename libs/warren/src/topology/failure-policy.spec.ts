import { TopologyError } from '../warren.errors.js';
import { resolveFailurePolicy } from './failure-policy.js';

const queue = { name: 'jobs', durable: true, exclusive: false, autoDelete: false, arguments: {} };

describe('resolveFailurePolicy: retryThrough', () => {
  it('declares a retry queue per delay by default, and none through the delay ladder', () => {
    const queues = resolveFailurePolicy('A.on', queue, { retryDelays: [100, 200] }, undefined);
    expect(queues.retryThrough).toBeUndefined();
    expect(queues.queues.map((q) => q.name)).toEqual(['jobs.dlq', 'warren.retry-100ms', 'warren.retry-200ms']);

    const ladder = resolveFailurePolicy(
      'A.on',
      queue,
      { retryDelays: [100, 200], retryThrough: 'delay-ladder' },
      undefined,
    );
    expect(ladder).toMatchObject({ mode: 'retry', retryDelays: [100, 200], retryThrough: 'delay-ladder' });
    expect(ladder.queues.map((q) => q.name)).toEqual(['jobs.dlq']);
    expect(ladder.exchanges).toEqual([]);
    expect(ladder.bindings).toEqual([]);
  });

  it("keeps a quorum queue's quorum retry queues under the module's default, and refuses the handler's own choice", () => {
    const quorum = { queueType: 'quorum' as const };
    const yielded = resolveFailurePolicy(
      'A.on',
      queue,
      { retryDelays: [100] },
      { retryThrough: 'delay-ladder' },
      quorum,
    );
    expect(yielded.retryThrough).toBeUndefined();
    expect(yielded.retryQueueType).toBe('quorum');
    expect(yielded.queues.map((q) => q.name)).toContain('warren.retry-100ms.quorum');
    expect(() => resolveFailurePolicy('A.on', queue, { retryThrough: 'delay-ladder' }, undefined, quorum)).toThrow(
      /^A\.on: failure\.retryThrough "delay-ladder" cannot serve a quorum queue/,
    );
  });

  it('refuses a value it does not know, naming the handler', () => {
    expect(() => resolveFailurePolicy('A.on', queue, { retryThrough: 'plugin' as never }, undefined)).toThrow(
      new TopologyError('A.on: failure.retryThrough "plugin" is not one of retry-queues, delay-ladder'),
    );
  });

  it('has nothing to say for modes that do not retry', () => {
    const policy = resolveFailurePolicy(
      'A.on',
      queue,
      { mode: 'dead-letter', retryThrough: 'delay-ladder' },
      undefined,
    );
    expect(policy.retryThrough).toBeUndefined();
    expect(policy.queues.map((q) => q.name)).toEqual(['jobs.dlq']);
  });
});

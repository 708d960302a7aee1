import type { ConsumerSpec } from '../topology/topology-builder.js';

/**
 * A connection's handlers in registration order, the subscriptions naming one named queue put
 * together (at the place of the first of them): one consumer for each group of two or more, a
 * service queue. What is not `shareable` (work queues, RPC queues, temporary queues) stays on
 * its own, and a second handler on its queue fails in the topology builder as before.
 */
export function groupServiceQueues<T extends { spec: ConsumerSpec; shareable: boolean }>(entries: readonly T[]): T[][] {
  const groups: T[][] = [];
  const byQueue = new Map<string, T[]>();
  for (const entry of entries) {
    const name = entry.spec.queue.name;
    if (!entry.shareable || name === '' || !entry.spec.exchange) {
      groups.push([entry]);
      continue;
    }
    const group = byQueue.get(name);
    if (group) {
      group.push(entry);
      continue;
    }
    const fresh = [entry];
    byQueue.set(name, fresh);
    groups.push(fresh);
  }
  return groups;
}

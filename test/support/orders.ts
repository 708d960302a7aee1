import { ORDERS_TOPOLOGY } from '../../src/orders/contracts.js';
import { deleteTopology, management } from './broker.js';

/**
 * Deletes the order service's exchange and queues on the shared broker, with the retry and
 * dead-letter queues Warren's failure policy adds next to each (`orders.sales.dlq`, ...): every
 * queue named `orders.*`.
 */
export async function deleteOrdersTopology(): Promise<void> {
  const onBroker = await management<{ name: string }[]>('/api/queues/%2F?columns=name');
  const derived = onBroker.map((q) => q.name).filter((name) => name.startsWith('orders.'));
  await deleteTopology({
    exchanges: ORDERS_TOPOLOGY.exchanges,
    queues: [...new Set([...ORDERS_TOPOLOGY.queues, ...derived])],
  });
}

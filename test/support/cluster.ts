import amqplib from 'amqplib';
import { type RabbitMQCluster, startRabbitMQCluster } from 'nestjs-warren/testing';

/** Forming the cluster (or starting a node again) is CPU-bound: minutes on a loaded machine. */
export const CLUSTER_HOOK_TIMEOUT_MS = 240_000;

/**
 * The run's one 3-node cluster for a suite: `beforeAll` gets it (formed by the first suite that
 * asks), `afterAll` hands it back to the next suite with every node running and the suite's
 * queues and exchanges deleted. The getter is for the suite's tests and hooks.
 */
export function useSharedCluster(leftovers: { queues?: string[]; exchanges?: string[] }): () => RabbitMQCluster {
  let cluster: RabbitMQCluster | undefined;
  beforeAll(async () => {
    cluster = await startRabbitMQCluster({ nodes: 3 });
  }, CLUSTER_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    if (!cluster) return;
    for (let i = 0; i < cluster.nodes.length; i++) await cluster.start(i);
    const connection = await amqplib.connect(cluster.urls[0]);
    try {
      const channel = await connection.createChannel();
      for (const queue of leftovers.queues ?? []) await channel.deleteQueue(queue);
      for (const exchange of leftovers.exchanges ?? []) await channel.deleteExchange(exchange);
    } finally {
      await connection.close();
    }
    await cluster.close();
  }, CLUSTER_HOOK_TIMEOUT_MS);
  return () => {
    if (!cluster) throw new Error('the shared cluster is not there: useSharedCluster() gets it in beforeAll');
    return cluster;
  };
}

import type { RabbitMQ, SharedRabbitMQCluster } from 'nestjs-warren/testing';

export default async function globalTeardown(): Promise<void> {
  const holder = globalThis as { __warrenBroker?: RabbitMQ; __warrenCluster?: SharedRabbitMQCluster };
  await Promise.all([holder.__warrenBroker?.stop(), holder.__warrenCluster?.close()]);
}

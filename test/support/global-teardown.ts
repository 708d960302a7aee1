import type { Postgres, RabbitMQ, SharedRabbitMQCluster } from 'nestjs-warren/testing';

export default async function globalTeardown(): Promise<void> {
  const holder = globalThis as {
    __warrenBroker?: RabbitMQ;
    __warrenCluster?: SharedRabbitMQCluster;
    __warrenPostgres?: Postgres;
  };
  await Promise.all([holder.__warrenBroker?.stop(), holder.__warrenCluster?.close(), holder.__warrenPostgres?.stop()]);
}

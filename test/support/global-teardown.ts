import type { RabbitMQ } from 'nestjs-warren/testing';

export default async function globalTeardown(): Promise<void> {
  const broker = (globalThis as { __warrenBroker?: RabbitMQ }).__warrenBroker;
  await broker?.stop();
}

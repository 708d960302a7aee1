import { startRabbitMQ } from 'nestjs-warren/testing';

/**
 * Gives every suite a real broker: RABBITMQ_URL when set (CI starts one), otherwise a private
 * node from the local rabbitmq-server install. No broker is an error, never a skip.
 */
export default async function globalSetup(): Promise<void> {
  const broker = await startRabbitMQ();
  process.env.RABBITMQ_URL = broker.url;
  if (broker.managementUrl) process.env.RABBITMQ_MANAGEMENT_URL = broker.managementUrl;
  (globalThis as { __warrenBroker?: unknown }).__warrenBroker = broker;
  // A passing run prints jest's summary only; WARREN_TEST_LOGS=all asks for everything.
  if (process.env.WARREN_TEST_LOGS === 'all') {
    console.log(`\nRabbitMQ for the tests: ${broker.source} broker at ${broker.url.replace(/:[^:@/]*@/, ':***@')}`);
  }
}

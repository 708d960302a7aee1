import { shareRabbitMQCluster, startPostgres, startRabbitMQ } from 'nestjs-warren/testing';

/**
 * Gives every suite a real broker: RABBITMQ_URL when set (CI starts one), otherwise a private
 * node from the local rabbitmq-server install. No broker is an error, never a skip.
 * The cluster suites share one 3-node cluster, formed by the first of them to ask (so a run
 * without them does not pay for it) and stopped in the teardown; one that cannot be formed fails
 * those suites.
 */
export default async function globalSetup(): Promise<void> {
  const broker = await startRabbitMQ();
  process.env.RABBITMQ_URL = broker.url;
  if (broker.managementUrl) process.env.RABBITMQ_MANAGEMENT_URL = broker.managementUrl;
  const holder = globalThis as { __warrenBroker?: unknown; __warrenCluster?: unknown; __warrenPostgres?: unknown };
  holder.__warrenBroker = broker;
  holder.__warrenCluster = await shareRabbitMQCluster();
  // The outbox's suites need a real PostgreSQL, found or started like the broker: DATABASE_URL
  // when set, otherwise a private server from the local install; none is an error, never a skip.
  const database = await startPostgres();
  process.env.DATABASE_URL = database.url;
  holder.__warrenPostgres = database;
  // A passing run prints jest's summary only; WARREN_TEST_LOGS=all asks for everything.
  if (process.env.WARREN_TEST_LOGS === 'all') {
    console.log(`
RabbitMQ for the tests: ${broker.source} broker at ${broker.url.replace(/:[^:@/]*@/, ':***@')}`);
  }
}

import { shareRabbitMQCluster, startPostgres, startRabbitMQ } from 'nestjs-warren/testing';

/** What of jest's global config says whether this run is the whole suite or chosen tests. */
interface RunSelection {
  testPathPatterns: { isSet(): boolean };
  onlyChanged: boolean;
  findRelatedTests: boolean;
  testNamePattern?: string;
  selectProjects?: string[];
}

/**
 * Gives every suite a real broker: RABBITMQ_URL when set (CI starts one), otherwise a private
 * node from the local rabbitmq-server install. No broker is an error, never a skip.
 * The cluster suites share one 3-node cluster, stopped in the teardown; one that cannot be formed
 * fails those suites. The whole run forms it in the background from the start (it takes 20–40 s
 * on 2 cores, which the first cluster suite would otherwise wait through); a run of chosen suites
 * leaves it to the first of them to ask, so a run without them does not pay for it.
 */
export default async function globalSetup(globalConfig: RunSelection): Promise<void> {
  const broker = await startRabbitMQ();
  process.env.RABBITMQ_URL = broker.url;
  if (broker.managementUrl) process.env.RABBITMQ_MANAGEMENT_URL = broker.managementUrl;
  const holder = globalThis as { __warrenBroker?: unknown; __warrenCluster?: unknown; __warrenPostgres?: unknown };
  holder.__warrenBroker = broker;
  const wholeRun =
    !globalConfig.testPathPatterns.isSet() &&
    !globalConfig.onlyChanged &&
    !globalConfig.findRelatedTests &&
    !globalConfig.testNamePattern &&
    (globalConfig.selectProjects ?? []).length === 0;
  holder.__warrenCluster = await shareRabbitMQCluster(wholeRun ? { formNow: { nodes: 3 } } : {});
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

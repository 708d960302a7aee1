export {
  startRabbitMQ,
  type RabbitMQ,
  type StartRabbitMQOptions,
  type StartRabbitMQTlsOptions,
} from './start-rabbitmq.js';
export {
  createTestCertificates,
  type TestCertificates,
  type TestCertificatesOptions,
  type TestKeyPair,
} from './test-certificates.js';
export {
  shareRabbitMQCluster,
  startRabbitMQCluster,
  type RabbitMQCluster,
  type RabbitMQClusterNode,
  type ShareRabbitMQClusterOptions,
  type SharedRabbitMQCluster,
  type StartRabbitMQClusterOptions,
} from './start-rabbitmq-cluster.js';
export { startPostgres, type Postgres, type StartPostgresOptions } from './start-postgres.js';
export { freshDatabase, type FreshDatabase, type FreshDatabaseOptions } from './fresh-database.js';
export { freePort } from './free-port.js';
export { MessageLog } from './message-log.js';
export {
  recordHandled,
  recordPublished,
  resetDeclaredTopology,
  type CapturedMessage,
  type RecordHandledOptions,
} from './app-probes.js';

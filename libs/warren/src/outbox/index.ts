// nestjs-warren/outbox: the transactional outbox and the idempotent inbox (docs/outbox.md).
export { OutboxModule, type OutboxModuleAsyncOptions } from './outbox.module.js';
export { Outbox, type OutboxModuleOptions } from './outbox.js';
export { Inbox, Idempotent, type IdempotentOptions } from './inbox.js';
export type { OutboxRelay, OutboxRelayOptions } from './outbox-relay.js';
export type { OutboxPublishOptions } from './outbox-writer.js';
export {
  pgliteDatabase,
  pgPoolDatabase,
  typeormDatabase,
  type DataSourceLike,
  type OutboxDatabase,
  type PGliteLike,
  type PgPoolLike,
} from './outbox-database.js';
export { outboxMigrationSql } from './outbox-schema.js';
export { OutboxError } from './outbox-errors.js';
export type { EntityManagerLike, OutboxTransaction, SqlQueryable } from './sql-transaction.js';

import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleInit,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { EventContract } from '../contracts/contracts.js';
import { Publisher } from '../publisher/publisher.js';
import { ConsumerLifecycle } from '../registry/consumer-lifecycle.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';
import { DEFAULT_CONNECTION, WARREN_MODULE_OPTIONS, type WarrenModuleOptions } from '../warren.options.js';
import { warrenToken } from '../warren.tokens.js';
import type { OutboxDatabase } from './outbox-database.js';
import { OutboxError } from './outbox-errors.js';
import { OutboxRelay, type OutboxRelayOptions } from './outbox-relay.js';
import { outboxMigrationStatements, outboxPresenceSql, type OutboxTables } from './outbox-schema.js';
import { OUTBOX_STATE } from './outbox-state.js';
import { type OutboxPublishOptions, OutboxWriter } from './outbox-writer.js';
import { sqlOf, type OutboxTransaction } from './sql-transaction.js';

export interface OutboxModuleOptions {
  /** The app's database: `pgPoolDatabase(pool)`, `pgliteDatabase(db)`, `typeormDatabase(dataSource)`. */
  database: OutboxDatabase;
  /** The tables' schema. Default `public`. */
  schema?: string;
  /**
   * Default false: the tables come from your own migrations (`outboxMigrationSql()`). True: the
   * migration runs at boot, before any consumer starts (idempotent, safe from several instances;
   * no DDL at all when the tables are there, see `migrate()`).
   */
  migrate?: boolean;
  relay?: OutboxRelayOptions;
  /** The Warren connection whose Publisher the relay uses. Default: the default connection. */
  connection?: string;
}

export const OUTBOX_MODULE_OPTIONS = Symbol('warren:outbox-options');

/**
 * The transactional outbox: `publish()` and `sendToQueue()` write the message into the outbox
 * table in the caller's transaction; the relay publishes it once that transaction has committed.
 */
@Injectable()
export class Outbox implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('WarrenOutbox');
  private writer?: OutboxWriter;
  private relayOf?: OutboxRelay;

  constructor(
    @Inject(OUTBOX_STATE) private readonly state: { database: OutboxDatabase; tables: OutboxTables },
    @Inject(OUTBOX_MODULE_OPTIONS) private readonly options: OutboxModuleOptions,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** Writes a message for `exchange`/`routingKey` into `tx`; resolves with its message id. */
  publish<T>(
    tx: OutboxTransaction,
    event: EventContract<T>,
    payload: NoInfer<T>,
    options?: OutboxPublishOptions,
  ): Promise<string>;
  publish(
    tx: OutboxTransaction,
    exchange: string,
    routingKey: string,
    payload: unknown,
    options?: OutboxPublishOptions,
  ): Promise<string>;
  publish(tx: OutboxTransaction, ...args: [never, never, never?, never?]): Promise<string> {
    return (this.write().publish as (tx: OutboxTransaction, ...rest: unknown[]) => Promise<string>)(tx, ...args);
  }

  /** Writes a message for `queue` (through the default exchange) into `tx`; resolves with its message id. */
  sendToQueue(tx: OutboxTransaction, queue: string, payload: unknown, options?: OutboxPublishOptions): Promise<string> {
    return this.write().sendToQueue(tx, queue, payload, options);
  }

  /** The relay of this instance: `poke()` asks for a pass now. */
  get relay(): OutboxRelay {
    if (!this.relayOf) throw new OutboxError('the outbox relay exists once the application has booted');
    return this.relayOf;
  }

  /**
   * Runs the migration (what `migrate: true` does at boot), unless its tables, indexes and trigger
   * are all there: on a database other instances are busy on, `CREATE INDEX IF NOT EXISTS` and the
   * trigger's DROP and CREATE take table locks even when they change nothing, which wait for the
   * writers' and relays' transactions and deadlock with them. Checked under the migration's
   * advisory lock, so instances booting at once on an empty database create everything once.
   */
  async migrate(): Promise<void> {
    const schema = this.state.tables.schema;
    await this.state.database.transaction(async (tx) => {
      const sql = sqlOf(tx, 'outbox migration');
      const [lock, ...statements] = outboxMigrationStatements(schema);
      await sql(lock);
      const [row] = await sql<{ present: boolean }>(outboxPresenceSql(schema));
      if (row?.present === true) return;
      for (const statement of statements) await sql(statement);
    });
  }

  async onModuleInit(): Promise<void> {
    const connection = this.options.connection ?? DEFAULT_CONNECTION;
    const warren = this.fromApp<WarrenModuleOptions>(warrenToken(WARREN_MODULE_OPTIONS, connection), connection);
    const publisher = this.fromApp<Publisher>(warrenToken(Publisher, connection), connection);
    this.writer = new OutboxWriter(this.state.tables, {
      maxBytes: warren.maxMessageBytes ?? WARREN_DEFAULTS.maxMessageBytes,
      codecs: publisher.codecs,
    });
    const lifecycle = this.fromApp<ConsumerLifecycle>(warrenToken(ConsumerLifecycle, connection), connection);
    this.relayOf = new OutboxRelay(
      this.state.database,
      this.state.tables,
      publisher,
      this.options.relay,
      () => lifecycle.ready,
    );
    if (this.options.migrate) await this.migrate();
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.relayOf?.start();
    if (this.options.relay?.enabled === false) this.logger.log('outbox relay off in this instance');
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.relayOf?.stop();
  }

  private write(): OutboxWriter {
    if (!this.writer) throw new OutboxError('the outbox is ready once its module has initialised');
    return this.writer;
  }

  private fromApp<T>(token: unknown, connection: string): T {
    try {
      return this.moduleRef.get(token as string, { strict: false }) as T;
    } catch (err) {
      throw new OutboxError(
        `OutboxModule: the Warren connection "${connection}" is not registered (WarrenModule.forRoot(` +
          `${connection === DEFAULT_CONNECTION ? '' : `{ name: '${connection}', ... }`})), or set OutboxModule's connection`,
        { cause: err },
      );
    }
  }
}

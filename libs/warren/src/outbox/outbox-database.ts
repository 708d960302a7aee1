import { Logger } from '@nestjs/common';
import { OutboxError } from './outbox-errors.js';
import type { EntityManagerLike, OutboxTransaction, SqlQueryable } from './sql-transaction.js';

/**
 * How the outbox's own work (the relay's passes, the inbox's transactions, the migration) reaches
 * the database: open a transaction, and hear NOTIFYs. One adapter per driver; a driver not listed
 * here is plugged in by implementing this interface (a transaction whose `tx` has `query(sql,
 * params)` resolving `{ rows }`, or is an EntityManager-like object).
 */
export interface OutboxDatabase {
  /** For logs: which driver, never credentials. */
  readonly description: string;
  /** Runs `work` in a transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(work: (tx: OutboxTransaction) => Promise<T>): Promise<T>;
  /**
   * Calls `onNotify` on every NOTIFY on `channel`; resolves with the unlistener. Without it the
   * relay only polls. A lost listening connection may stay lost: the relay polls meanwhile.
   */
  listen?(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
}

/** `pg`'s PoolClient. */
interface PgPoolClientLike extends SqlQueryable {
  release(destroy?: boolean | Error): void;
  on(event: 'notification' | 'error' | 'end', listener: (...args: unknown[]) => void): unknown;
  removeListener?(event: 'error', listener: (...args: unknown[]) => void): unknown;
  removeAllListeners?(event?: string): unknown;
}

/** `pg`'s Pool. */
export interface PgPoolLike {
  connect(): Promise<PgPoolClientLike>;
  on?(event: 'error', listener: (err: Error) => void): unknown;
}

const logger = new Logger('WarrenOutbox');
/** The pools whose idle clients' errors the outbox already hears. */
const heard = new WeakSet<object>();

/**
 * pg re-emits an idle client's error (its connection ended by a server restart, a failover, an
 * administrator: 57P01) on the pool, and drops the client; a pool without an 'error' listener
 * throws it, which takes the process down. The outbox's store is a user of the pool: it listens,
 * once per pool, and logs. The app's own listeners, if any, hear it too.
 */
function hearIdleErrors(pool: PgPoolLike): void {
  if (typeof pool.on !== 'function' || heard.has(pool)) return;
  heard.add(pool);
  pool.on('error', (err) =>
    logger.warn(`outbox database (pg): an idle pool client's connection failed, the pool drops it: ${err.message}`),
  );
}

/** While checked out, a client has no pool listener: its connection's end, between statements, is heard here. */
const ignoreWhileCheckedOut = () => undefined;

/**
 * A `pg` Pool. Transactions take a client from the pool each; LISTEN holds one client of it
 * for as long as the relay runs.
 */
export function pgPoolDatabase(pool: PgPoolLike): OutboxDatabase {
  if (typeof pool?.connect !== 'function') throw new OutboxError('pgPoolDatabase(): expected a pg Pool');
  hearIdleErrors(pool);
  return {
    description: 'PostgreSQL (pg)',
    async transaction<T>(work: (tx: OutboxTransaction) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      // The statement after it fails with the connection's error, which then rolls back.
      client.on('error', ignoreWhileCheckedOut);
      let broken: unknown;
      try {
        await client.query('BEGIN');
        try {
          const result = await work(client);
          await client.query('COMMIT');
          return result;
        } catch (err) {
          await client.query('ROLLBACK').catch((rollbackFailed: unknown) => (broken = rollbackFailed));
          throw err;
        }
      } catch (err) {
        broken ??= isConnectionError(err) ? err : undefined;
        throw err;
      } finally {
        client.removeListener?.('error', ignoreWhileCheckedOut);
        // A client whose connection broke must not go back to the pool for the next caller.
        client.release(broken ? true : undefined);
      }
    },
    listen: (channel, onNotify) => pgListen(pool, channel, onNotify),
  };
}

async function pgListen(pool: PgPoolLike, channel: string, onNotify: () => void): Promise<() => Promise<void>> {
  const client = await pool.connect();
  client.on('notification', (message) => {
    if ((message as { channel?: string }).channel === channel) onNotify();
  });
  // The pool's own error listener is gone while a client is checked out: without this, a lost
  // listening connection would be an uncaught 'error'.
  client.on('error', () => undefined);
  await client.query(`LISTEN "${channel}"`);
  return async () => {
    try {
      await client.query(`UNLISTEN "${channel}"`);
      client.release();
    } catch {
      client.release(true);
    }
  };
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code !== 'string' || code.startsWith('08') || code === '57P01';
}

/** PGlite's instance. */
export interface PGliteLike {
  transaction<T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
}

/** PGlite (`@electric-sql/pglite`): real PostgreSQL in-process; one connection, so one relay. */
export function pgliteDatabase(db: PGliteLike): OutboxDatabase {
  if (typeof db?.transaction !== 'function' || typeof db.listen !== 'function') {
    throw new OutboxError('pgliteDatabase(): expected a PGlite instance');
  }
  return {
    description: 'PGlite (embedded PostgreSQL)',
    transaction: (work) => db.transaction((tx) => work(tx)),
    // PGlite quotes nothing: the channel goes as an identifier, so quoted here.
    listen: (channel, onNotify) => db.listen(`"${channel}"`, () => onNotify()),
  };
}

/** TypeORM's DataSource on the `postgres` driver. */
export interface DataSourceLike {
  transaction<T>(work: (manager: EntityManagerLike) => Promise<T>): Promise<T>;
  readonly driver?: { readonly master?: unknown; readonly options?: { readonly type?: string } };
}

/**
 * A TypeORM DataSource. Transactions are `dataSource.transaction()`'s; on the `postgres` driver
 * the relay LISTENs on one client of the driver's pg Pool (`driver.master`), elsewhere it polls.
 */
export function typeormDatabase(dataSource: DataSourceLike): OutboxDatabase {
  if (typeof dataSource?.transaction !== 'function') {
    throw new OutboxError('typeormDatabase(): expected a TypeORM DataSource');
  }
  const type = dataSource.driver?.options?.type;
  if (type !== undefined && type !== 'postgres') {
    throw new OutboxError(`typeormDatabase(): the outbox speaks PostgreSQL, the DataSource is "${type}"`);
  }
  return {
    description: 'PostgreSQL (TypeORM)',
    transaction: (work) => dataSource.transaction((manager) => work(manager)),
    listen: async (channel, onNotify) => {
      const master = dataSource.driver?.master as PgPoolLike | undefined;
      if (typeof master?.connect !== 'function') return async () => undefined;
      return pgListen(master, channel, onNotify);
    },
  };
}

import { OutboxError } from './outbox-errors.js';

// The outbox speaks PostgreSQL's SQL to whatever the app holds its transaction in. These are the
// shapes it relies on, written out rather than imported, so the drivers stay optional peers.

/** `pg`'s Client or PoolClient, PGlite or one of its transactions: `query(sql, params)` → `{ rows }`. */
export interface SqlQueryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** TypeORM's EntityManager: `query()` resolves with the rows; its query runner knows the transaction. */
export interface EntityManagerLike {
  query(sql: string, params?: unknown[]): Promise<unknown>;
  readonly queryRunner?: { readonly isTransactionActive: boolean };
}

/**
 * What `outbox.publish(tx, ...)` takes: the connection (or ORM manager) the app's transaction is
 * open on. pg: the Client/PoolClient after `BEGIN`; PGlite: the `tx` of `db.transaction(tx => ...)`;
 * TypeORM: the `manager` of `dataSource.transaction(manager => ...)`.
 */
export type OutboxTransaction = SqlQueryable | EntityManagerLike;

/** One SQL statement on the caller's transaction: the rows, whichever driver runs it. */
export type RunSql = <Row = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<Row[]>;

/**
 * A `RunSql` on `tx`, or an OutboxError when `tx` is not something the outbox can use, or an ORM
 * manager that says it is outside a transaction. (A pg client outside one is caught by the first
 * statement: see `lockForWrite()`.)
 */
export function sqlOf(tx: unknown, what: string): RunSql {
  if (tx === null || typeof tx !== 'object' || typeof (tx as { query?: unknown }).query !== 'function') {
    throw new OutboxError(
      `${what}: tx must be the connection or manager your transaction is open on (a pg Client/PoolClient ` +
        `after BEGIN, a PGlite transaction, a TypeORM EntityManager of dataSource.transaction()), got ${describe(tx)}`,
    );
  }
  if ('queryRunner' in tx || isEntityManager(tx)) {
    const manager = tx as EntityManagerLike;
    if (!manager.queryRunner?.isTransactionActive) {
      throw new OutboxError(
        `${what}: the TypeORM EntityManager is not in a transaction (use the manager that ` +
          `dataSource.transaction(manager => ...) hands you, or a QueryRunner's after startTransaction())`,
      );
    }
    return async <Row>(sql: string, params?: unknown[]) => {
      const result = await manager.query(sql, params);
      return (Array.isArray(result) ? result : []) as Row[];
    };
  }
  const queryable = tx as SqlQueryable;
  return async <Row>(sql: string, params?: unknown[]) => (await queryable.query(sql, params)).rows as Row[];
}

function isEntityManager(tx: object): boolean {
  return (
    tx.constructor?.name === 'EntityManager' || typeof (tx as { getRepository?: unknown }).getRepository === 'function'
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return `an object without query() (${value.constructor?.name ?? 'Object'})`;
}

/** PostgreSQL's SQLSTATE of a driver error, if it has one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** 25P01: the statement needs a transaction block and there is none. */
export const NO_ACTIVE_TRANSACTION = '25P01';
/** 42P01: no such table. */
export const UNDEFINED_TABLE = '42P01';
/** 23505: a unique constraint held. */
export const UNIQUE_VIOLATION = '23505';

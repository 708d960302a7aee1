import { resolve } from 'node:path';
import { type OutboxDatabase, pgliteDatabase, pgPoolDatabase, type SqlQueryable } from 'nestjs-warren/outbox';

/** Where `npm start` keeps its embedded database when DATA_DIR is unset (relative to the working directory). */
export const DEFAULT_DATA_DIR = './.data';

export type DatabaseChoice =
  | { kind: 'postgres'; url: string; source: 'DATABASE_URL' }
  | { kind: 'pglite'; dataDir: string; source: 'DATA_DIR' | 'default' | 'in-memory' };

/**
 * DATABASE_URL selects a PostgreSQL server; without it the all-in-one `npm start` keeps its orders
 * in an embedded PGlite in DATA_DIR. Split processes must share one database, and a PGlite
 * directory serves one process only, so they need DATABASE_URL.
 */
export function ordersDatabaseChoice(layout: 'all-in-one' | 'split'): DatabaseChoice {
  const url = process.env.DATABASE_URL;
  if (url) {
    if (!/^postgres(?:ql)?:\/\//i.test(url)) {
      throw new Error(`DATABASE_URL must be a postgres:// URL, got "${describeUrl(url)}"`);
    }
    return { kind: 'postgres', url, source: 'DATABASE_URL' };
  }
  if (layout === 'split') {
    throw new Error(
      'DATABASE_URL is not set: orders-api and orders-worker are separate processes and must share one ' +
        'PostgreSQL (postgres://...); the embedded database of `npm start` serves one process only',
    );
  }
  const dataDir = process.env.DATA_DIR;
  return dataDir
    ? { kind: 'pglite', dataDir: resolve(dataDir), source: 'DATA_DIR' }
    : { kind: 'pglite', dataDir: resolve(DEFAULT_DATA_DIR), source: 'default' };
}

/** How the log names a database choice: never the password. */
export function describeChoice(choice: DatabaseChoice): string {
  if (choice.kind === 'postgres') return `PostgreSQL ${describeUrl(choice.url)} (from DATABASE_URL)`;
  if (choice.source === 'in-memory') return 'embedded PGlite in memory (discarded at exit)';
  const why = choice.source === 'DATA_DIR' ? 'from DATA_DIR' : 'default: DATABASE_URL is not set';
  return `embedded PGlite in ${choice.dataDir} (${why})`;
}

function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    parsed.username = '';
    parsed.search = '';
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}

/**
 * The service's own tables. `order_steps` has one row per order and department (its key makes a
 * repeated report change nothing); an order is `completed` when it has a row for every
 * department, read from there rather than kept in a column that concurrent reports would have to
 * agree on; `department_effects` is what the departments' stand-in systems
 * did, with no unique constraint, so an effect done twice would show as two rows; `order_failures`
 * is a step's last dead letter (one row per order and step, the latest failure wins), which a
 * later `order_steps` row for the step (the dead letter redriven and handled) overrides.
 */
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS orders (
    id uuid PRIMARY KEY,
    customer_name text NOT NULL,
    products_ids integer[] NOT NULL,
    total_cents integer NOT NULL,
    placed_at timestamptz NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS order_steps (
    order_id uuid NOT NULL REFERENCES orders (id),
    step text NOT NULL,
    worker text NOT NULL,
    completed_at timestamptz NOT NULL,
    PRIMARY KEY (order_id, step)
  )`,
  `CREATE TABLE IF NOT EXISTS department_effects (
    order_id uuid NOT NULL,
    department text NOT NULL,
    worker text NOT NULL,
    done_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE INDEX IF NOT EXISTS department_effects_order_id ON department_effects (order_id)`,
  `CREATE TABLE IF NOT EXISTS order_failures (
    order_id uuid NOT NULL REFERENCES orders (id),
    step text NOT NULL,
    reason text NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL,
    failed_at timestamptz NOT NULL,
    PRIMARY KEY (order_id, step)
  )`,
];

/** Serialises the migration of several instances booting at once: CREATE ... IF NOT EXISTS alone races. */
const MIGRATION_LOCK = 7_531_902;

/** The order service's database, whichever engine: its queries, its transactions, and the outbox's adapter. */
export class OrdersDatabase {
  constructor(
    /** For the log: which database, never credentials. */
    readonly description: string,
    /** What `OutboxModule` runs the relay and the inbox on. */
    readonly outbox: OutboxDatabase,
    private readonly run: (sql: string, params?: unknown[]) => Promise<{ rows: unknown[] }>,
    private readonly end: () => Promise<void>,
  ) {}

  async query<Row>(sql: string, params?: unknown[]): Promise<Row[]> {
    return (await this.run(sql, params)).rows as Row[];
  }

  /** Commits if `work` resolves, rolls back if it throws. */
  transaction<T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    // Both engines hand out a pg-like client (`query` → `{ rows }`), never an ORM manager.
    return this.outbox.transaction((tx) => work(tx as SqlQueryable));
  }

  /**
   * Whether the service's tables and the outbox's are all there. Checked before migrating: DDL on
   * a database other instances are busy on (CREATE INDEX, a trigger's DROP and CREATE) takes table
   * locks that deadlock with their transactions, so an instance joining a live database runs none.
   */
  async ready(): Promise<boolean> {
    const [row] = await this.query<{ ready: boolean }>(
      `SELECT to_regclass('department_effects_order_id') IS NOT NULL
          AND to_regclass('order_failures') IS NOT NULL
          AND to_regclass('warren_inbox_received') IS NOT NULL AS ready`,
    );
    return row?.ready === true;
  }

  async migrate(): Promise<void> {
    await this.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      for (const statement of SCHEMA) await tx.query(statement);
    });
  }

  close(): Promise<void> {
    return this.end();
  }
}

/** Opens (and for PGlite creates) the chosen database. */
export async function openOrdersDatabase(choice: DatabaseChoice): Promise<OrdersDatabase> {
  const description = describeChoice(choice);
  if (choice.kind === 'postgres') {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: choice.url });
    // An idle client whose server went away: the next query fails and says so; without a
    // listener the pool's 'error' would end the process.
    pool.on('error', () => undefined);
    return new OrdersDatabase(
      description,
      pgPoolDatabase(pool),
      (sql, params) => pool.query(sql, params),
      () => pool.end(),
    );
  }
  const db =
    choice.source === 'in-memory'
      ? await (await import('./pglite-template.js')).inMemoryPglite()
      : await (await import('@electric-sql/pglite')).PGlite.create(choice.dataDir);
  return new OrdersDatabase(
    description,
    pgliteDatabase(db),
    (sql, params) => db.query(sql, params),
    () => db.close(),
  );
}

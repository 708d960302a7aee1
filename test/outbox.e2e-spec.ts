import { PGlite } from '@electric-sql/pglite';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Consume, Publisher, PublishError, type WarrenContext } from 'nestjs-warren';
import {
  Idempotent,
  Inbox,
  Outbox,
  OutboxError,
  OutboxModule,
  outboxMigrationSql,
  type OutboxDatabase,
  type OutboxTransaction,
  pgliteDatabase,
  type SqlQueryable,
  pgPoolDatabase,
  typeormDatabase,
} from 'nestjs-warren/outbox';
import amqplib from 'amqplib';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { logged } from './support/logs.js';
import { TcpProxy } from './support/tcp-proxy.js';

const QUEUE = unique('e2e.outbox');
const IDEMPOTENT = unique('e2e.outbox.inbox');

@Injectable()
class Received {
  messages: { payload: unknown; messageId?: string }[] = [];

  @Consume(QUEUE, { failure: 'drop' })
  on(payload: unknown, context: WarrenContext) {
    this.messages.push({ payload, messageId: context.properties.messageId });
  }
}

/** The inbox on the same driver: its write and its outbox message in the inbox's transaction. */
@Injectable()
class Deduplicated {
  runs = new Map<string, number>();

  constructor(
    private readonly inbox: Inbox,
    private readonly outbox: Outbox,
  ) {}

  @Consume(IDEMPOTENT, { failure: 'drop' })
  @Idempotent()
  async on(payload: { key: string }) {
    this.runs.set(payload.key, (this.runs.get(payload.key) ?? 0) + 1);
    // A pg client, a PGlite transaction or a TypeORM EntityManager: each has query(sql, params).
    const tx = this.inbox.transaction<{ query(sql: string, params: unknown[]): Promise<unknown> }>();
    await tx.query('INSERT INTO inbox_effects (key) VALUES ($1)', [payload.key]);
    await this.outbox.sendToQueue(tx, QUEUE, { echo: payload.key });
  }
}

/** One way to hold a transaction: a driver, its OutboxDatabase, and how a test opens a transaction on it. */
interface Store {
  database: OutboxDatabase;
  inTransaction<T>(work: (tx: OutboxTransaction) => Promise<T>): Promise<T>;
  /** Autocommit: a connection that is not in a transaction. */
  outsideTransaction<T>(work: (tx: OutboxTransaction) => Promise<T>): Promise<T>;
  count(sql: string): Promise<number>;
  close(): Promise<void>;
}

async function pgStore(url: string): Promise<Store> {
  const pool = new pg.Pool({ connectionString: url, max: 5 });
  const database = pgPoolDatabase(pool);
  return {
    database,
    inTransaction: (work) => database.transaction(work),
    outsideTransaction: async (work) => {
      const client = await pool.connect();
      try {
        return await work(client);
      } finally {
        client.release();
      }
    },
    count: async (sql) => Number((await pool.query<{ n: string }>(sql)).rows[0].n),
    close: () => pool.end(),
  };
}

async function pgliteStore(): Promise<Store> {
  const db = new PGlite();
  const database = pgliteDatabase(db);
  return {
    database,
    inTransaction: (work) => database.transaction(work),
    outsideTransaction: (work) => work(db),
    count: async (sql) => Number((await db.query<{ n: string }>(sql)).rows[0].n),
    close: () => db.close(),
  };
}

async function typeormStore(url: string): Promise<Store> {
  const dataSource = new DataSource({ type: 'postgres', url, poolSize: 5 });
  await dataSource.initialize();
  const database = typeormDatabase(dataSource);
  return {
    database,
    inTransaction: (work) => database.transaction(work),
    outsideTransaction: (work) => work(dataSource.manager),
    count: async (sql) => Number(((await dataSource.query(sql)) as { n: string }[])[0].n),
    close: () => dataSource.destroy(),
  };
}

const STORES: [string, (db: TestDatabase) => Promise<Store>][] = [
  ['pg Pool', (db) => pgStore(db.url)],
  ['PGlite', () => pgliteStore()],
  ['TypeORM EntityManager', (db) => typeormStore(db.url)],
];

afterAll(() => deleteTopology({ queues: [QUEUE, IDEMPOTENT] }));

describe.each(STORES)('the outbox on %s', (_, open) => {
  let db: TestDatabase;
  let store: Store;
  let app: INestApplicationContext;
  let outbox: Outbox;
  let received: Received;

  beforeAll(async () => {
    db = await freshDatabase();
    store = await open(db);
    await store.inTransaction((tx) => (tx as SqlQueryable).query('CREATE TABLE inbox_effects (key text NOT NULL)'));
    app = await bootApp({
      imports: [OutboxModule.forRoot({ database: store.database, migrate: true, relay: { pollIntervalMs: 200 } })],
      providers: [Received, Deduplicated],
    });
    outbox = app.get(Outbox);
    received = app.get(Received);
  });

  afterAll(async () => {
    await app?.close();
    await store?.close();
    await db?.drop();
  });

  beforeEach(() => (received.messages = []));

  it('publishes what a committed transaction wrote, with the row id as message id', async () => {
    const ids = await store.inTransaction(async (tx) => [
      await outbox.sendToQueue(tx, QUEUE, { n: 1 }),
      await outbox.sendToQueue(tx, QUEUE, { n: 2 }),
    ]);
    await waitUntil('both messages', () => received.messages.length === 2);
    expect(received.messages).toEqual([
      { payload: { n: 1 }, messageId: ids[0] },
      { payload: { n: 2 }, messageId: ids[1] },
    ]);
    await waitUntil(
      'the rows marked sent',
      async () => (await store.count('SELECT count(*) AS n FROM warren_outbox WHERE sent_at IS NULL')) === 0,
    );
  });

  it('never publishes what a rolled-back transaction wrote', async () => {
    await expect(
      store.inTransaction(async (tx) => {
        await outbox.sendToQueue(tx, QUEUE, 'rolled back');
        throw new Error('the business write failed');
      }),
    ).rejects.toThrow('the business write failed');
    await store.inTransaction((tx) => outbox.sendToQueue(tx, QUEUE, 'committed'));
    await waitUntil('the committed message', () => received.messages.length === 1);
    // The later commit went out, so the relay has had its chance at the rolled-back one.
    expect(received.messages.map((m) => m.payload)).toEqual(['committed']);
    expect(
      await store.count(
        "SELECT count(*) AS n FROM warren_outbox WHERE content = convert_to('\"rolled back\"', 'UTF8')",
      ),
    ).toBe(0);
  });

  it('refuses a tx that is not in a transaction, writing nothing', async () => {
    const before = await store.count('SELECT count(*) AS n FROM warren_outbox');
    await expect(store.outsideTransaction((tx) => outbox.sendToQueue(tx, QUEUE, 'autocommit'))).rejects.toThrow(
      OutboxError,
    );
    await expect(store.outsideTransaction((tx) => outbox.sendToQueue(tx, QUEUE, 'autocommit'))).rejects.toThrow(
      /not in a transaction/,
    );
    expect(await store.count('SELECT count(*) AS n FROM warren_outbox')).toBe(before);
  });

  it('refuses a payload that cannot be encoded before writing anything', async () => {
    const before = await store.count('SELECT count(*) AS n FROM warren_outbox');
    await store.inTransaction(async (tx) => {
      await expect(outbox.sendToQueue(tx, QUEUE, { big: 1n })).rejects.toThrow(PublishError);
      await expect(outbox.sendToQueue(tx, QUEUE, { big: 1n })).rejects.toThrow(new RegExp(`queue "${QUEUE}"`));
      // The transaction is still usable: the refusal came before any SQL.
      await outbox.sendToQueue(tx, QUEUE, 'after the refusal');
    });
    await waitUntil('the committed message', () => received.messages.length === 1);
    expect(await store.count('SELECT count(*) AS n FROM warren_outbox')).toBe(before + 1);
  });

  it("runs an @Idempotent() handler once for two copies of a message, its write and its outbox message committed in the inbox's transaction", async () => {
    const key = unique('copy');
    const deduplicated = app.get(Deduplicated);
    const publisher = app.get(Publisher);
    for (let i = 0; i < 2; i++) await publisher.sendToQueue(IDEMPOTENT, { key }, { messageId: `m-${key}` });
    await publisher.sendToQueue(IDEMPOTENT, { key: `${key}-next` }, { messageId: `m-${key}-next` });
    // The next message's echo comes after the copies were handled (one consumer, in order).
    await waitUntil('the next echo', () =>
      received.messages.some((m) => (m.payload as { echo?: string }).echo === `${key}-next`),
    );
    expect(deduplicated.runs.get(key)).toBe(1);
    expect(received.messages.filter((m) => (m.payload as { echo?: string }).echo === key)).toHaveLength(1);
    expect(await store.count(`SELECT count(*) AS n FROM inbox_effects WHERE key = '${key}'`)).toBe(1);
    expect(await store.count(`SELECT count(*) AS n FROM warren_inbox WHERE message_id = 'm-${key}'`)).toBe(1);
  });

  it('names the migration when the table is missing', async () => {
    const empty = await freshDatabase();
    const other = await open(empty);
    try {
      await expect(other.inTransaction((tx) => outbox.sendToQueue(tx, QUEUE, 'nowhere'))).rejects.toThrow(
        /warren_outbox does not exist: run the outbox's migration/,
      );
    } finally {
      await other.close();
      await empty.drop();
    }
  });
});

/** The messages waiting in `queue`, or undefined while it does not exist. */
async function queueLength(queue: string): Promise<number | undefined> {
  const connection = await amqplib.connect(brokerUrl());
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    return (await channel.checkQueue(queue).catch(() => undefined))?.messageCount;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

describe('the relay and a topology the broker has not been given yet', () => {
  const exchange = unique('e2e.outbox.late');
  const queue = unique('e2e.outbox.late');
  // Declared before the binding, so the binding comes last by some way.
  const fillers = Array.from({ length: 200 }, (_, i) => `${queue}.filler${i}`);
  let db: TestDatabase;
  let pool: pg.Pool;
  let proxy: TcpProxy;
  let app: INestApplicationContext | undefined;

  beforeAll(async () => {
    db = await freshDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 5 });
    proxy = TcpProxy.forUrl(brokerUrl());
    await proxy.start();
    // The exchange is there, the binding is not: a publish before the app's declarations would
    // be confirmed, routed nowhere and dropped.
    const connection = await amqplib.connect(brokerUrl());
    await (await connection.createChannel()).assertExchange(exchange, 'topic', { durable: true });
    await connection.close();
  });

  afterAll(async () => {
    await app?.close();
    await proxy?.stop();
    await pool?.end();
    await db?.drop();
    await deleteTopology({ exchanges: [exchange], queues: [queue, ...fillers] });
  });

  it('publishes nothing before the connection has declared its topology: rows committed while the broker was away all reach the queue bound on its return', async () => {
    proxy.refuse();
    app = await bootApp(
      {
        imports: [
          OutboxModule.forRoot({ database: pgPoolDatabase(pool), migrate: true, relay: { pollIntervalMs: 100 } }),
        ],
      },
      {
        url: proxy.url(brokerUrl()),
        waitForBroker: false,
        topology: {
          exchanges: [{ name: exchange, type: 'topic' }],
          queues: [...fillers.map((name) => ({ name, durable: false })), { name: queue }],
          bindings: [{ exchange, queue, routingKey: 'late' }],
        },
      },
    );
    const outbox = app.get(Outbox);
    const database = pgPoolDatabase(pool);
    const count = 50;
    await database.transaction(async (tx) => {
      for (let n = 0; n < count; n++) await outbox.publish(tx, exchange, 'late', { n });
    });

    proxy.accept();
    await waitUntil(
      'every row sent',
      async () =>
        Number((await pool.query('SELECT count(*) AS n FROM warren_outbox WHERE sent_at IS NULL')).rows[0].n) === 0,
      30_000,
    );
    // Declared by now, or soon: the app's declarations and the relay's publishes race.
    let length: number | undefined;
    await waitUntil('the queue declared', async () => (length = await queueLength(queue)) !== undefined);
    expect(length).toBe(count);
  });
});

describe('pgPoolDatabase on a pool whose connection the server ends', () => {
  let db: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await freshDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
  });

  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  /** Ends a session the way a server restart, a failover or a dropped database does (57P01). */
  async function terminate(pid: number): Promise<void> {
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    } finally {
      await admin.end();
    }
  }

  it("an idle client's connection ended is logged and dropped, not an uncaught error; the next transaction works", async () => {
    // The app's pool, with no 'error' listener of the app's own: only the outbox's store uses it.
    const database = pgPoolDatabase(pool);
    const pid = await database.transaction(
      async (tx) => (await (tx as pg.PoolClient).query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid,
    );
    expect(pool.idleCount).toBe(1);
    await terminate(pid);
    await waitUntil('the pool to drop the ended client', () => pool.totalCount === 0);
    expect(logged('warn', 'WarrenOutbox')).toEqual([
      expect.stringMatching(
        /^outbox database \(pg\): an idle pool client's connection failed, the pool drops it: .*terminat/,
      ),
    ]);
    const again = await database.transaction(
      async (tx) => (await (tx as pg.PoolClient).query<{ one: number }>('SELECT 1 AS one')).rows[0].one,
    );
    expect(again).toBe(1);
  });

  it('a client ended while checked out for a transaction fails that transaction, not the process', async () => {
    const database = pgPoolDatabase(pool);
    const failed = database.transaction(async (tx) => {
      const client = tx as pg.PoolClient;
      const { pid } = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0];
      // Between two statements, as the relay is while it waits for the broker's confirms: pg
      // emits the server's 57P01 as the client's 'error', then 'end'.
      const closed = new Promise((resolve) => client.once('end', resolve));
      await terminate(pid);
      await closed;
      await client.query('SELECT 1');
    });
    await expect(failed).rejects.toThrow();
    await waitUntil('the pool to drop the broken client', () => pool.totalCount === 0);
    const again = await database.transaction(
      async (tx) => (await (tx as pg.PoolClient).query<{ one: number }>('SELECT 1 AS one')).rows[0].one,
    );
    expect(again).toBe(1);
  });
});

describe('the migration on a database in use', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let app: INestApplicationContext | undefined;

  beforeAll(async () => {
    db = await freshDatabase();
    // A lock the migration would wait for fails it after 2 s instead of hanging the suite.
    pool = new pg.Pool({ connectionString: db.url, max: 5, options: '-c lock_timeout=2000' });
  });

  afterAll(async () => {
    await app?.close();
    await pool?.end();
    await db?.drop();
  });

  it("another instance's migration, the tables there and a writer's transaction open on them, takes no table lock and changes nothing", async () => {
    app = await bootApp({ imports: [OutboxModule.forRoot({ database: pgPoolDatabase(pool), migrate: true })] });
    const outbox = app.get(Outbox);
    const tables = async () =>
      (
        await pool.query<{ name: string }>(
          `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relname LIKE 'warren\\_%' ORDER BY 1`,
        )
      ).rows.map((r) => r.name);
    const before = await tables();
    expect(before).toEqual(expect.arrayContaining(['warren_inbox', 'warren_outbox', 'warren_outbox_unsent']));

    // A writer in the middle of its transaction holds ROW EXCLUSIVE on warren_outbox, as the
    // instances already running on the database do all the time.
    const writer = await pool.connect();
    try {
      await writer.query('BEGIN');
      await outbox.sendToQueue(writer, unique('e2e.outbox.nowhere'), 'in flight');
      // What a second instance booting with migrate: true runs: CREATE INDEX IF NOT EXISTS alone
      // would wait for the writer's lock (and, with a relay waiting behind it, deadlock).
      await expect(outbox.migrate()).resolves.toBeUndefined();
      await writer.query('COMMIT');
    } finally {
      writer.release();
    }
    expect(await tables()).toEqual(before);
  });

  it('the printed SQL, run twice as a script by your own migrations, gives the tables an app with migrate: false writes to', async () => {
    const own = await freshDatabase();
    const ownPool = new pg.Pool({ connectionString: own.url, max: 3 });
    let other: INestApplicationContext | undefined;
    try {
      await ownPool.query(outboxMigrationSql());
      await ownPool.query(outboxMigrationSql());
      const { rows } = await ownPool.query<{ name: string }>(
        `SELECT relname::text AS name FROM pg_class WHERE relname LIKE 'warren\\_%'
         UNION ALL SELECT tgname::text FROM pg_trigger WHERE tgname LIKE 'warren\\_%' ORDER BY 1`,
      );
      expect(rows.map((r) => r.name)).toEqual(
        expect.arrayContaining([
          'warren_inbox',
          'warren_inbox_received',
          'warren_outbox',
          'warren_outbox_notify',
          'warren_outbox_sent',
          'warren_outbox_unsent',
        ]),
      );
      other = await bootApp({ imports: [OutboxModule.forRoot({ database: pgPoolDatabase(ownPool) })] });
      const writes = other.get(Outbox);
      await pgPoolDatabase(ownPool).transaction((tx) => writes.sendToQueue(tx, unique('e2e.outbox.nowhere'), 'x'));
      await waitUntil(
        'the row sent',
        async () => (await ownPool.query('SELECT 1 FROM warren_outbox WHERE sent_at IS NULL')).rows.length === 0,
      );
    } finally {
      await other?.close();
      await ownPool.end();
      await own.drop();
    }
  });
});

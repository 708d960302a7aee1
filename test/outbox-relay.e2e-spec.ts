import type { INestApplicationContext } from '@nestjs/common';
import amqplib from 'amqplib';
import {
  Outbox,
  OutboxModule,
  type OutboxDatabase,
  type OutboxRelayOptions,
  pgPoolDatabase,
} from 'nestjs-warren/outbox';
import pg from 'pg';
import { bootApp } from './support/app.js';
import { brokerUrl, unique, waitUntil } from './support/broker.js';
import { freshDatabase, type TestDatabase } from './support/database.js';

// The relay's promises that the other suites only touch in passing: several relays on one
// database publish each row once, an ordered relay keeps seq order against a rival, a commit
// wakes it (NOTIFY) and polling finds rows without one, and the cleanup keeps what it must.

let db: TestDatabase;
let pool: pg.Pool;
let apps: INestApplicationContext[] = [];
let amqp: amqplib.ChannelModel;

/** One app instance with an outbox (and its relay) on the test's database. */
async function instance(relay: OutboxRelayOptions, database: OutboxDatabase = pgPoolDatabase(pool)): Promise<Outbox> {
  const app = await bootApp({ imports: [OutboxModule.forRoot({ database, migrate: true, relay })] });
  apps.push(app);
  return app.get(Outbox);
}

/** Every message that reaches a queue of the test's own: its payload and message id, in arrival order. */
async function receiver(): Promise<{ queue: string; got: { n: number; id: string }[] }> {
  const queue = unique('e2e.outbox-relay');
  const channel = await amqp.createChannel();
  await channel.assertQueue(queue, { exclusive: true, durable: false });
  const got: { n: number; id: string }[] = [];
  await channel.consume(
    queue,
    (message) => message && got.push({ n: JSON.parse(message.content.toString()).n, id: message.properties.messageId }),
    { noAck: true },
  );
  return { queue, got };
}

/** Writes `count` messages to `queue`, `perTransaction` to a transaction, one transaction after another. */
async function write(outbox: Outbox, queue: string, count: number, perTransaction: number): Promise<string[]> {
  const database = pgPoolDatabase(pool);
  const ids: string[] = [];
  for (let n = 0; n < count; n += perTransaction) {
    await database.transaction(async (tx) => {
      for (let k = n; k < Math.min(count, n + perTransaction); k++)
        ids.push(await outbox.sendToQueue(tx, queue, { n: k }));
    });
  }
  return ids;
}

async function unsent(): Promise<number> {
  return (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM warren_outbox WHERE sent_at IS NULL')).rows[0]
    .n;
}

/** Closes the instances; `stop()` waits for a relay's pass in flight, so nothing is published after. */
async function closeAll(): Promise<void> {
  await Promise.all(apps.map((app) => app.close()));
  apps = [];
}

beforeAll(async () => {
  amqp = await amqplib.connect(brokerUrl());
});

afterAll(async () => {
  await amqp?.close();
});

beforeEach(async () => {
  db = await freshDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 10 });
});

afterEach(async () => {
  await closeAll();
  await pool?.end();
  await db?.drop();
});

it('three relays on one database, unordered (all publishing at once), publish each of 600 committed rows exactly once', async () => {
  const relay: OutboxRelayOptions = { ordered: false, batchSize: 10, pollIntervalMs: 50 };
  const outboxes = [await instance(relay), await instance(relay), await instance(relay)];
  const { queue, got } = await receiver();
  // Every instance writes a share, so each relay is woken by commits while the others work.
  const ids = (await Promise.all(outboxes.map((outbox) => write(outbox, queue, 200, 5)))).flat();
  await waitUntil('every row sent', async () => (await unsent()) === 0, 60_000);
  await closeAll();
  await waitUntil('every message received', () => new Set(got.map((m) => m.id)).size === ids.length, 30_000);
  // A row claimed by two relays at once would arrive twice, with the same message id.
  const copies = got.length - new Set(got.map((m) => m.id)).size;
  expect(copies).toBe(0);
  expect(new Set(got.map((m) => m.id))).toEqual(new Set(ids));
});

it('ordered (the default): two relays over a backlog of 300 rows publish them in seq order, one relay at a time', async () => {
  const { queue, got } = await receiver();
  // The backlog is written before any relay runs (this instance's is off), so both start on it at once.
  const writer = await instance({ enabled: false });
  await write(writer, queue, 300, 10);
  // Both relays are held at their first claim until both are up, so they compete for the backlog
  // from its first row: without the ordered relay's lock, the second would claim rows 10-19 while
  // the first holds 0-9, and their publishes would interleave.
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const relay: OutboxRelayOptions = { batchSize: 10, pollIntervalMs: 50, hold: () => gate };
  await Promise.all([instance(relay), instance(relay)]);
  open();
  await waitUntil('every message received', () => got.length === 300, 60_000);
  expect(got.map((m) => m.n)).toEqual(Array.from({ length: 300 }, (_, n) => n));
});

it('marks a row sent only once the broker confirmed it: one the broker refuses stays unsent and retried, and the rest of its batch goes out', async () => {
  // Every pass that claimed rows, counted (the hook runs after the claim, before the publishes).
  let passes = 0;
  const outbox = await instance({ pollIntervalMs: 50, retryDelayMs: 50, hold: async () => void passes++ });
  const { queue, got } = await receiver();
  const database = pgPoolDatabase(pool);
  // No such exchange: the broker closes the channel (404), and the publish fails.
  const refused = await database.transaction(async (tx) => {
    const id = await outbox.publish(tx, unique('e2e.outbox-relay.no-such-exchange'), 'x', { n: -1 });
    await outbox.sendToQueue(tx, queue, { n: 0 });
    await outbox.sendToQueue(tx, queue, { n: 1 });
    return id;
  });
  await waitUntil('the two publishable rows', () => got.length === 2);
  const state = async () =>
    (
      await pool.query<{ id: string; sent: boolean }>(
        'SELECT id, sent_at IS NOT NULL AS sent FROM warren_outbox ORDER BY seq',
      )
    ).rows.map((r) => (r.id === refused ? `refused ${r.sent ? 'sent' : 'unsent'}` : r.sent ? 'sent' : 'unsent'));
  await waitUntil('the confirmed rows marked', async () => (await state()).filter((r) => r === 'sent').length === 2);
  // Three more passes claim it again and fail to publish it; none marks it.
  const after = passes;
  await waitUntil('three more passes', () => passes >= after + 3);
  expect(await state()).toEqual(['refused unsent', 'sent', 'sent']);
  expect(got.map((m) => m.n)).toEqual([0, 1]);
  await pool.query('DELETE FROM warren_outbox WHERE id = $1', [refused]);
});

it("a commit's NOTIFY wakes the relay: a row goes out long before the next poll", async () => {
  const outbox = await instance({ pollIntervalMs: 600_000 });
  const { queue, got } = await receiver();
  // The relay's first passes are behind it: from here only a NOTIFY (or the poll, in 10 min) wakes it.
  await write(outbox, queue, 1, 1);
  await waitUntil('the first row', () => got.length === 1, 30_000);
  await write(outbox, queue, 1, 1);
  await waitUntil('the second row, woken by its commit', () => got.length === 2, 30_000);
});

it('without LISTEN (a database adapter that has none) the relay polls: the row goes out all the same', async () => {
  const pgDatabase = pgPoolDatabase(pool);
  const database: OutboxDatabase = {
    description: 'pg without LISTEN',
    transaction: (work) => pgDatabase.transaction(work),
  };
  const outbox = await instance({ pollIntervalMs: 200 }, database);
  const { queue, got } = await receiver();
  await write(outbox, queue, 3, 1);
  await waitUntil('the rows, found by polling', () => got.length === 3, 30_000);
});

it('the cleanup deletes sent rows and inbox records past their retention, and nothing unsent or younger', async () => {
  const outbox = await instance({
    retentionMs: 60_000,
    inboxRetentionMs: 60_000,
    cleanupIntervalMs: 200,
  });
  const { queue, got } = await receiver();
  const [old, young] = await write(outbox, queue, 2, 1);
  await waitUntil('both sent', () => got.length === 2);
  await waitUntil('both marked sent', async () => (await unsent()) === 0);
  await pool.query(`UPDATE warren_outbox SET sent_at = now() - interval '1 hour' WHERE id = $1`, [old]);
  // An unsent row, however old, is never the cleanup's: one written an hour ago while another
  // instance's relay publishes (the test holds the ordered relays' lock, so this relay leaves it).
  const held = await pool.connect();
  try {
    await held.query(`SELECT pg_advisory_lock(hashtext('warren_outbox_relay:public'))`);
    await pool.query(
      `INSERT INTO warren_outbox (id, exchange, routing_key, content, properties, created_at)
     VALUES (gen_random_uuid(), '', 'nowhere', '\\x00', '{}', now() - interval '1 hour')`,
    );
    await pool.query(
      `INSERT INTO warren_inbox (consumer, message_id, received_at) VALUES
       ('Test.old', 'm1', now() - interval '1 hour'), ('Test.young', 'm2', now())`,
    );
    await waitUntil(
      'the old sent row and the old inbox record deleted',
      async () =>
        (
          await pool.query(
            `SELECT 1 FROM warren_outbox WHERE id = $1 UNION ALL SELECT 1 FROM warren_inbox WHERE consumer = 'Test.old'`,
            [old],
          )
        ).rows.length === 0,
    );
    const outboxRows = await pool.query<{ id: string; sent: boolean }>(
      'SELECT id, sent_at IS NOT NULL AS sent FROM warren_outbox ORDER BY seq',
    );
    expect(outboxRows.rows.map((r) => (r.id === young ? 'young' : r.sent ? 'sent' : 'unsent'))).toEqual([
      'young',
      'unsent',
    ]);
    const inboxRows = await pool.query<{ consumer: string }>('SELECT consumer FROM warren_inbox');
    expect(inboxRows.rows.map((r) => r.consumer)).toEqual(['Test.young']);
  } finally {
    // Its connection ended, and the advisory lock with it.
    held.release(true);
  }
});

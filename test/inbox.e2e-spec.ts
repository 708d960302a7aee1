import { Injectable, type INestApplicationContext } from '@nestjs/common';
import amqplib from 'amqplib';
import { Consume, Publisher, RpcHandler } from 'nestjs-warren';
import { Idempotent, Inbox, OutboxModule, pgPoolDatabase } from 'nestjs-warren/outbox';
import pg from 'pg';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';
import { freshDatabase, type TestDatabase } from './support/database.js';

const EFFECTS = unique('e2e.inbox.effects');
const FLAKY = unique('e2e.inbox.flaky');
const RPC = unique('e2e.inbox.rpc');
const CONCURRENT = unique('e2e.inbox.concurrent');
const BATCH = unique('e2e.inbox.batch');
/** Deliveries of CONCURRENT the handler holds at once, each waiting until all are in. */
const AT_ONCE = 4;

@Injectable()
class Workers {
  runs = new Map<string, number>();
  failFirst = new Set<string>();
  served = 0;

  constructor(private readonly inbox: Inbox) {}

  private async effect(queue: string, payload: { key: string }) {
    this.runs.set(payload.key, (this.runs.get(payload.key) ?? 0) + 1);
    // The handler's own write, in the inbox's transaction.
    await this.inbox
      .transaction<pg.PoolClient>()
      .query('INSERT INTO effects (queue, key) VALUES ($1, $2)', [queue, payload.key]);
  }

  @Consume(EFFECTS, { failure: 'drop' })
  @Idempotent()
  async onEffect(payload: { key: string }) {
    await this.effect(EFFECTS, payload);
  }

  @Consume(FLAKY, { failure: { mode: 'requeue', requeueDelayMs: 50 } })
  @Idempotent()
  async onFlaky(payload: { key: string }) {
    await this.effect(FLAKY, payload);
    if (this.failFirst.delete(payload.key)) throw new Error('the department system failed after writing');
  }

  /** Each concurrent run: its key and the transaction it ran in (`txid_current()`). */
  concurrent: { key: string; txid: string }[] = [];
  private allIn?: () => void;
  private readonly everyoneIn = new Promise<void>((resolve) => (this.allIn = resolve));

  @Consume(CONCURRENT, { failure: 'drop', prefetch: AT_ONCE, concurrency: AT_ONCE })
  @Idempotent()
  async onConcurrent(payload: { key: string; fail?: boolean }) {
    const tx = this.inbox.transaction<pg.PoolClient>();
    const { rows } = await tx.query<{ txid: string }>('SELECT txid_current()::text AS txid');
    await tx.query('INSERT INTO effects (queue, key) VALUES ($1, $2)', [CONCURRENT, payload.key]);
    this.concurrent.push({ key: payload.key, txid: rows[0].txid });
    if (this.concurrent.length === AT_ONCE) this.allIn!();
    // All in flight at once, each inside its transaction, before any commits (bounded: a broken
    // dispatch that runs them one by one fails the test's count, not by hanging).
    await Promise.race([this.everyoneIn, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    if (payload.fail) throw new Error('this delivery fails after writing');
  }

  @RpcHandler(RPC, { durable: false })
  @Idempotent()
  reserve(payload: { key: string }) {
    this.served++;
    return { key: payload.key, reservation: this.served };
  }
}

let db: TestDatabase;
let pool: pg.Pool;
let app: INestApplicationContext;
let workers: Workers;
let publisher: Publisher;

async function effects(queue: string, key: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM effects WHERE queue = $1 AND key = $2', [
    queue,
    key,
  ]);
  return Number(rows[0].n);
}

beforeAll(async () => {
  db = await freshDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 5 });
  await pool.query('CREATE TABLE effects (queue text NOT NULL, key text NOT NULL)');
  app = await bootApp({
    imports: [OutboxModule.forRoot({ database: pgPoolDatabase(pool), migrate: true })],
    providers: [Workers],
  });
  workers = app.get(Workers);
  publisher = app.get(Publisher);
});

afterAll(async () => {
  await app?.close();
  await pool?.end();
  await db?.drop();
  await deleteTopology({ queues: [EFFECTS, FLAKY, RPC, CONCURRENT, BATCH] });
});

describe('@Idempotent() handlers (the inbox)', () => {
  it('runs a message once however often it is delivered, and acks the copies', async () => {
    const key = unique('dup');
    for (let i = 0; i < 3; i++) await publisher.sendToQueue(EFFECTS, { key }, { messageId: `m-${key}` });
    await publisher.sendToQueue(EFFECTS, { key: `${key}-other` }, { messageId: `m-${key}-other` });
    // The last message is handled after the copies before it: they were acked, not held.
    await waitUntil('the last message', () => workers.runs.get(`${key}-other`) === 1);
    expect(workers.runs.get(key)).toBe(1);
    expect(await effects(EFFECTS, key)).toBe(1);
    const { rows } = await pool.query('SELECT consumer FROM warren_inbox WHERE message_id = $1', [`m-${key}`]);
    expect(rows).toEqual([{ consumer: 'Workers.onEffect' }]);
  });

  it("rolls a failed handler's writes back with its record, so the retry runs it again, once", async () => {
    const key = unique('flaky');
    workers.failFirst.add(key);
    await publisher.sendToQueue(FLAKY, { key }, { messageId: `m-${key}` });
    await waitUntil('the retry', () => workers.runs.get(key) === 2);
    await waitUntil('the retry to commit', async () => (await effects(FLAKY, key)) === 1);
    // A copy after the successful retry is recognised.
    await publisher.sendToQueue(FLAKY, { key }, { messageId: `m-${key}` });
    await publisher.sendToQueue(FLAKY, { key: `${key}-after` }, { messageId: `m-${key}-after` });
    await waitUntil('the message after', () => workers.runs.get(`${key}-after`) === 1);
    expect(workers.runs.get(key)).toBe(2);
    expect(await effects(FLAKY, key)).toBe(1);
  });

  it('answers a repeated RPC request with the first reply, without running the handler again', async () => {
    const connection = await amqplib.connect(brokerUrl());
    try {
      const channel = await connection.createChannel();
      const replies: unknown[] = [];
      await channel.consume(
        'amq.rabbitmq.reply-to',
        (message) => message && replies.push(JSON.parse(message.content.toString())),
        { noAck: true },
      );
      const key = unique('rpc');
      const before = workers.served;
      for (let i = 0; i < 2; i++) {
        channel.sendToQueue(RPC, Buffer.from(JSON.stringify({ key })), {
          replyTo: 'amq.rabbitmq.reply-to',
          correlationId: `c-${key}`,
          messageId: `m-${key}`,
          contentType: 'application/json',
        });
      }
      await waitUntil('both replies', () => replies.length === 2);
      expect(workers.served).toBe(before + 1);
      expect(replies[1]).toEqual(replies[0]);
      expect(replies[0]).toEqual({ key, reservation: before + 1 });
    } finally {
      await connection.close();
    }
  });

  it('does not run a message that has no message id (it could not be told from its copies)', async () => {
    const connection = await amqplib.connect(brokerUrl());
    try {
      const channel = await connection.createConfirmChannel();
      const key = unique('no-id');
      channel.sendToQueue(EFFECTS, Buffer.from(JSON.stringify({ key })), { contentType: 'application/json' });
      await channel.waitForConfirms();
      await publisher.sendToQueue(EFFECTS, { key: `${key}-next` }, { messageId: `m-${key}-next` });
      await waitUntil('the next message', () => workers.runs.get(`${key}-next`) === 1);
      expect(workers.runs.get(key)).toBeUndefined();
    } finally {
      await connection.close();
    }
  });

  it('gives each delivery handled at once a transaction of its own: one that fails rolls back only its own writes', async () => {
    const keys = Array.from({ length: AT_ONCE }, (_, i) => unique(`concurrent${i}`));
    for (const [i, key] of keys.entries()) {
      await publisher.sendToQueue(CONCURRENT, { key, fail: i === 0 }, { messageId: `m-${key}` });
    }
    await waitUntil('every delivery handled', () => workers.concurrent.length === AT_ONCE);
    expect(new Set(workers.concurrent.map((run) => run.txid)).size).toBe(AT_ONCE);
    // The failed one's effect and inbox record rolled back; the others' committed with theirs.
    await waitUntil('the others committed', async () => (await effects(CONCURRENT, keys[AT_ONCE - 1])) === 1);
    const committed = await Promise.all(keys.map((key) => effects(CONCURRENT, key)));
    expect(committed).toEqual([0, ...Array(AT_ONCE - 1).fill(1)]);
    const { rows } = await pool.query<{ message_id: string }>(
      "SELECT message_id FROM warren_inbox WHERE consumer = 'Workers.onConcurrent' ORDER BY 1",
    );
    expect(rows.map((r) => r.message_id)).toEqual(
      keys
        .slice(1)
        .map((key) => `m-${key}`)
        .sort(),
    );
  });
});

describe('@Idempotent() on a batch handler', () => {
  @Injectable()
  class BatchWorker {
    @Consume(BATCH, { batch: { size: 10 }, failure: 'drop' })
    @Idempotent()
    onBatch() {
      return undefined;
    }
  }

  it('fails the boot naming the method: a batch is not one message per transaction', async () => {
    await expect(
      bootApp({
        imports: [OutboxModule.forRoot({ database: pgPoolDatabase(pool) })],
        providers: [BatchWorker],
      }),
    ).rejects.toThrow(
      /BatchWorker\.onBatch: @Idempotent\(\) records one message per transaction, and this is a batch handler/,
    );
  });
});

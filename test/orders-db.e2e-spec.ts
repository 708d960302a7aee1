import amqplib from 'amqplib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ORDERS_EXCHANGE, OrderPlaced, STEPS } from '../src/orders/contracts.js';
import type { Order } from '../src/orders/order-store.js';
import { brokerUrl } from './support/broker.js';
import { deleteOrdersTopology } from './support/orders.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { type ProgramProcess, startProgramWith, stopAllPrograms, waitFor, waitForLine } from './support/programs.js';

// The order service's persistence as real processes: the embedded default database kept across
// a restart, and the window between an order's commit and its announcement's confirm.

const HOOK_TIMEOUT = 30_000;

async function apiBase(proc: ProgramProcess): Promise<string> {
  const line = await waitForLine(proc, /order service up on http:\/\/localhost:\d+/, 60_000);
  return `http://127.0.0.1:${/localhost:(\d+)/.exec(line)![1]}`;
}

async function request(base: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${base}${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** Polls until every order is `completed`; fails naming one that is not. */
async function waitForCompleted(
  procs: ProgramProcess[],
  base: string,
  ids: string[],
  timeoutMs: number,
): Promise<Map<string, Order>> {
  const seen = new Map<string, Order>();
  const pending = new Set(ids);
  const deadline = Date.now() + timeoutMs;
  while (pending.size > 0) {
    const gone = procs.find((p) => p.status);
    if (gone) throw new Error(`${gone.label} exited while orders were pending:\n${gone.describe()}`);
    for (const id of [...pending]) {
      const reply = await request(base, 'GET', `/order/${id}`);
      if (reply.status !== 200) throw new Error(`GET /order/${id} answered ${reply.status}`);
      seen.set(id, reply.body);
      if (reply.body.status === 'completed') pending.delete(id);
    }
    if (pending.size === 0) break;
    if (Date.now() > deadline) {
      throw new Error(
        `${pending.size} of ${ids.length} orders not completed after ${timeoutMs} ms, e.g. ${JSON.stringify(seen.get([...pending][0]))}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return seen;
}

afterEach(() => stopAllPrograms(), HOOK_TIMEOUT);

describe('the embedded default database', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'warren-orders-data-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('`npm start` without DATABASE_URL keeps its orders in PGlite in DATA_DIR: an order is still there, with its status, after a restart', async () => {
    // Nothing installed: the in-process broker and the embedded database.
    const env = { DATABASE_URL: undefined, RABBITMQ_URL: undefined, DATA_DIR: dataDir, PORT: '0' };
    const first = startProgramWith(env, 'orders');
    const base = await apiBase(first);
    // The first line says which database and which broker, and why.
    expect(first.lines[0]).toMatch(
      new RegExp(`database embedded PGlite in ${dataDir} \\(from DATA_DIR\\), broker memory:// \\(default`),
    );
    const placed = await request(base, 'POST', '/order', { customer_name: 'Ada', products_ids: [2, 4] });
    expect(placed.status).toBe(201);
    const before = (await waitForCompleted([first], base, [placed.body.id], 30_000)).get(placed.body.id)!;
    expect(await first.stop(10_000)).toEqual({ code: 0, signal: null });

    const second = startProgramWith(env, 'orders');
    const again = await request(await apiBase(second), 'GET', `/order/${placed.body.id}`);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(before);
    expect(again.body).toMatchObject({ status: 'completed', customer_name: 'Ada', products_ids: [2, 4] });
    expect(first.stderr + second.stderr).toBe('');
  }, 180_000);
});

describe('the crash window between commit and announcement', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  beforeAll(async () => {
    await deleteOrdersTopology();
    db = await freshDatabase();
    pool = new pg.Pool({ connectionString: db.url });
  }, HOOK_TIMEOUT);
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
    await deleteOrdersTopology();
  }, HOOK_TIMEOUT);

  it('an API SIGKILLed after committing orders and before their announcements are confirmed: restarted, every committed order is announced and completed', async () => {
    const env = { DATABASE_URL: db.url, PORT: '0' };
    // The relay holds its first pass: what is committed stays unannounced until the kill.
    const held = startProgramWith({ ...env, ORDERS_TEST_HOLD_RELAY: '1' }, 'orders-api');
    const heldBase = await apiBase(held);

    const connection = await amqplib.connect(brokerUrl());
    const channel = await connection.createChannel();
    const tapped: string[] = [];
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(queue, ORDERS_EXCHANGE, OrderPlaced.routingKey);
    await channel.consume(queue, (m) => m && tapped.push(JSON.parse(m.content.toString()).id), { noAck: true });
    try {
      const count = 30;
      const replies = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          request(heldBase, 'POST', '/order', { customer_name: `crash ${i}`, products_ids: [3] }),
        ),
      );
      expect(replies.map((r) => r.status)).toEqual(Array(count).fill(201));
      const ids = replies.map((r) => r.body.id as string);
      await waitForLine(held, /outbox relay holding a pass/, 30_000);

      // Committed, not announced: the window the outbox exists for.
      const stored = await pool.query('SELECT count(*)::int AS n FROM orders WHERE id = ANY($1)', [ids]);
      expect(stored.rows[0].n).toBe(count);
      const unsent = await pool.query('SELECT count(*)::int AS n FROM warren_outbox WHERE sent_at IS NULL');
      expect(unsent.rows[0].n).toBe(count);
      expect(tapped).toEqual([]);

      expect(await held.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });

      const api = startProgramWith(env, 'orders-api');
      const workers = STEPS.map((step) => startProgramWith(env, 'orders-worker', step));
      const base = await apiBase(api);
      const completed = await waitForCompleted([api, ...workers], base, ids, 60_000);
      expect([...completed.values()].filter((o) => o.status !== 'completed')).toEqual([]);
      // Every committed order was announced, each once (the relay that died published none).
      await waitFor([api], 'every order on the tap', () => ids.every((id) => tapped.includes(id)), 10_000);
      expect(tapped.filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
      const effects = await pool.query(
        'SELECT count(*)::int AS n FROM department_effects WHERE order_id = ANY($1) GROUP BY order_id, department',
        [ids],
      );
      expect(effects.rows.length).toBe(count * STEPS.length);
      expect(effects.rows.filter((r) => r.n !== 1)).toEqual([]);
    } finally {
      await connection.close();
    }
  }, 240_000);
});

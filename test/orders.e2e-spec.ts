import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import amqplib from 'amqplib';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  DEAD_LETTER_QUEUES,
  type OrderPlacedEvent,
  ORDERS_EXCHANGE,
  OrderPlaced,
  STEPS,
} from '../src/orders/contracts.js';
import { OrdersDatabase, openOrdersDatabase } from '../src/orders/database.js';
import { MAX_PRODUCTS_PER_ORDER } from '../src/orders/order-request.js';
import type { Order } from '../src/orders/order-store.js';
import { OrdersModule } from '../src/orders/orders.module.js';
import { Catalogue } from '../src/orders/stock.service.js';
import { DepartmentEffects, MarketingStatistics, SalesSystem, WarehousePrinter } from '../src/orders/workers.js';
import { brokerUrl, waitUntil } from './support/broker.js';
import { deleteOrdersTopology } from './support/orders.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import {
  consumerCount,
  MAIN_JS,
  type ProgramProcess,
  runProgram,
  startProgram,
  startProgramWithEnv,
  stopAllPrograms,
  waitForLine,
} from './support/programs.js';

// The order service (src/orders) against the test broker: HTTP in, RabbitMQ between the parts.
// Its queues have fixed names, so every part of this suite starts from a deleted topology and
// runs no two instances of the service at once.

/** The `warren` command as the package installs it (`npm run build:lib`). */
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'libs/warren/dist/esm/cli/main.js');
const run = promisify(execFile);

const HOOK_TIMEOUT = 30_000;
const TEST_TIMEOUT = 45_000;
/**
 * Bounds for the tests that start processes or put 500 orders through: each order is now three
 * inbox transactions and four outbox rows, and a loaded 2-core machine boots a process in tens of
 * seconds. Generous bounds that still end a stuck test.
 */
const SLOW_TEST_TIMEOUT = 150_000;
const BOOT_MS = 60_000;

// --- HTTP ---------------------------------------------------------------------------------------

interface Reply {
  status: number;
  body: any;
  headers: Headers;
}

/**
 * One request, bounded: by 15 s alone, or by `signal`, the deadline of a burst of them. Hundreds
 * in flight at once queue in the service on a loaded machine, so a single request's bound would
 * measure the machine's speed, not the service's behaviour.
 */
async function http(
  base: string,
  method: string,
  path: string,
  body?: string,
  contentType?: string,
  signal: AbortSignal = AbortSignal.timeout(15_000),
): Promise<Reply> {
  const response = await fetch(`${base}${path}`, {
    method,
    body,
    headers: contentType ? { 'content-type': contentType } : {},
    signal,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

const postOrder = (base: string, order: unknown, signal?: AbortSignal) =>
  http(base, 'POST', '/order', JSON.stringify(order), 'application/json', signal);
const getOrder = (base: string, id: string) => http(base, 'GET', `/order/${encodeURIComponent(id)}`);

/** Polls `GET /order/:id` until every order is `completed`; the orders as last seen. */
async function waitForCompleted(base: string, ids: string[], timeoutMs: number): Promise<Map<string, Order>> {
  const seen = new Map<string, Order>();
  const pending = new Set(ids);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // A few GETs in flight at a time: hundreds at once would slow the service under test (it runs
    // in this process) and time out on a loaded machine.
    const replies: Reply[] = [];
    const ids = [...pending];
    for (let i = 0; i < ids.length; i += 25) {
      replies.push(...(await Promise.all(ids.slice(i, i + 25).map((id) => getOrder(base, id)))));
    }
    for (const reply of replies) {
      if (reply.status !== 200)
        throw new Error(`GET /order/:id answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      seen.set(reply.body.id, reply.body);
      if (reply.body.status === 'completed') pending.delete(reply.body.id);
    }
    if (pending.size === 0) return seen;
    if (Date.now() > deadline) {
      const example = seen.get([...pending][0]);
      throw new Error(
        `${pending.size} of ${ids.length} orders not completed after ${timeoutMs} ms, e.g. ${JSON.stringify(example)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

// --- Stand-ins that count what reached them ---------------------------------------------------

/** Times each order id reached one department's system. */
class Tally {
  readonly counts = new Map<string, number>();
  add(id: string): void {
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
  }
}

class CountingSales extends SalesSystem {
  readonly tally = new Tally();
  /** While set, orders wait here: the sales step stays pending. */
  gate?: Promise<void>;
  /** Customers whose orders the sales system refuses, on every attempt, while they are here. */
  readonly refusing = new Set<string>();
  override async record(order: OrderPlacedEvent): Promise<void> {
    this.tally.add(order.id);
    await this.gate;
    if (this.refusing.has(order.customer_name)) throw new Error('the sales system is down');
    return super.record(order);
  }
}

class CountingMarketing extends MarketingStatistics {
  readonly tally = new Tally();
  override async add(order: OrderPlacedEvent): Promise<void> {
    this.tally.add(order.id);
    return super.add(order);
  }
}

class CountingPrinter extends WarehousePrinter {
  readonly tally = new Tally();
  override async print(order: OrderPlacedEvent): Promise<void> {
    this.tally.add(order.id);
    return super.print(order);
  }
}

/** Records every product id the stock service looked up. */
class CountingCatalogue extends Catalogue {
  readonly lookups: number[] = [];
  override find(id: number) {
    this.lookups.push(id);
    return super.find(id);
  }
}

/**
 * An exclusive queue of the test's own, bound like the workers' queues: it receives every
 * order-placed event the API publishes while it exists.
 */
async function tapOrderPlaced() {
  const connection = await amqplib.connect(brokerUrl());
  const channel = await connection.createChannel();
  const events: OrderPlacedEvent[] = [];
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, ORDERS_EXCHANGE, OrderPlaced.routingKey);
  await channel.consume(queue, (msg) => msg && events.push(JSON.parse(msg.content.toString())), { noAck: true });
  return { events, close: () => connection.close() };
}

// --- One process: API, stock service and the three workers ------------------------------------

/** `department_effects` rows of `ids` that are not exactly one per order and department: `[id, department, rows]`. */
async function effectsNotOnce(db: OrdersDatabase, ids: string[]): Promise<[string, string, number][]> {
  const rows = await db.query<{ order_id: string; department: string; n: number }>(
    'SELECT order_id, department, count(*)::int AS n FROM department_effects WHERE order_id = ANY($1) GROUP BY 1, 2',
    [ids],
  );
  const counts = new Map(rows.map((r) => [`${r.order_id} ${r.department}`, r.n]));
  return ids.flatMap((id) =>
    STEPS.map((step): [string, string, number] => [id, step, counts.get(`${id} ${step}`) ?? 0]).filter(
      ([, , n]) => n !== 1,
    ),
  );
}

describe('the order service in one process', () => {
  let app: INestApplication;
  let base: string;
  let testDb: TestDatabase;
  let database: OrdersDatabase;
  let sales!: CountingSales;
  let marketing!: CountingMarketing;
  let printer!: CountingPrinter;
  const catalogue = new CountingCatalogue();

  beforeAll(async () => {
    await deleteOrdersTopology();
    testDb = await freshDatabase();
    database = await openOrdersDatabase({ kind: 'postgres', url: testDb.url, source: 'DATABASE_URL' });
    const moduleRef = await Test.createTestingModule({
      imports: [
        OrdersModule.forRoot({
          api: true,
          stock: true,
          workers: STEPS,
          url: brokerUrl(),
          connectionName: 'orders-e2e',
          // Retries within a test's time: a step that keeps failing is dead-lettered after 3 attempts.
          warren: { connectTimeoutMs: 10_000, failure: { retryDelays: [100, 200] } },
          database,
        }),
      ],
    })
      .overrideProvider(SalesSystem)
      .useFactory({
        factory: (effects: DepartmentEffects) => (sales = new CountingSales(effects)),
        inject: [DepartmentEffects],
      })
      .overrideProvider(MarketingStatistics)
      .useFactory({
        factory: (effects: DepartmentEffects) => (marketing = new CountingMarketing(effects)),
        inject: [DepartmentEffects],
      })
      .overrideProvider(WarehousePrinter)
      .useFactory({
        factory: (effects: DepartmentEffects) => (printer = new CountingPrinter(effects)),
        inject: [DepartmentEffects],
      })
      .overrideProvider(Catalogue)
      .useValue(catalogue)
      .compile();
    app = moduleRef.createNestApplication({ logger: ['error', 'warn'] });
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  }, HOOK_TIMEOUT);

  afterAll(async () => {
    await app?.close();
    await database?.close();
    await testDb?.drop();
    await deleteOrdersTopology();
  }, HOOK_TIMEOUT);

  it(
    'takes 500 concurrent orders; every one completes, and each worker handled each order exactly once',
    async () => {
      const count = 500;
      // Known, in-stock products only (13 and 66 are sold out).
      const orders = Array.from({ length: count }, (_, i) => ({
        customer_name: `customer ${i}`,
        products_ids: [1 + (i % 12), 20 + (i % 7), 42],
      }));
      // The burst is bounded as a whole, well inside the test's own bound.
      const burst = AbortSignal.timeout(60_000);
      const replies = await Promise.all(orders.map((order) => postOrder(base, order, burst)));

      const refused = replies.filter((r) => r.status !== 201);
      expect(refused.map((r) => [r.status, r.body])).toEqual([]);
      const ids = replies.map((r) => r.body.id as string);
      expect(new Set(ids).size).toBe(count);
      for (const r of replies) expect(r.headers.get('location')).toBe(`/order/${r.body.id}`);

      const completed = await waitForCompleted(base, ids, 120_000);
      ids.forEach((id, i) => {
        const order = completed.get(id)!;
        expect(order).toMatchObject({ id, status: 'completed', ...orders[i] });
        for (const step of STEPS) expect(order.steps[step].status).toBe('done');
      });

      for (const [step, tally] of [
        ['sales', sales.tally],
        ['marketing', marketing.tally],
        ['warehouse', printer.tally],
      ] as const) {
        const notOnce = ids.filter((id) => tally.counts.get(id) !== 1).map((id) => [id, tally.counts.get(id) ?? 0]);
        expect({ step, notOnce }).toEqual({ step, notOnce: [] });
      }
      expect(await effectsNotOnce(database, ids)).toEqual([]);
    },
    // The burst's bound and the completion's, with room for the checks.
    60_000 + 120_000 + 30_000,
  );

  it(
    'answers `received` at once and `completed` only once all three workers are done',
    async () => {
      let release!: () => void;
      sales.gate = new Promise<void>((resolve) => (release = resolve));
      try {
        const placed = await postOrder(base, { customer_name: 'Ada', products_ids: [2, 4, 42] });
        expect(placed.status).toBe(201);
        expect(Object.keys(placed.body)).toEqual(['id']);
        const id: string = placed.body.id;

        const first = await getOrder(base, id);
        expect(first.status).toBe(200);
        expect(first.body).toMatchObject({ id, status: 'received', customer_name: 'Ada', products_ids: [2, 4, 42] });
        expect(first.body.steps.sales).toEqual({ status: 'pending' });

        // Two of three steps done, sales held back: still `received`.
        let partial: Order | undefined;
        await waitUntil('the marketing and warehouse steps done', async () => {
          partial = (await getOrder(base, id)).body;
          return partial!.steps.marketing.status === 'done' && partial!.steps.warehouse.status === 'done';
        });
        expect(sales.tally.counts.get(id)).toBe(1);
        expect(partial).toMatchObject({ status: 'received', steps: { sales: { status: 'pending' } } });

        release();
        const done = (await waitForCompleted(base, [id], 10_000)).get(id)!;
        expect(done.steps.sales).toMatchObject({ status: 'done', worker: `${hostname()}:${process.pid}` });
        expect(typeof done.completed_at).toBe('string');
      } finally {
        release();
        sales.gate = undefined;
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'shows an order whose step was dead-lettered as `failed`, with the step and why; `warren dlq redrive` completes it',
    async () => {
      sales.refusing.add('Unlucky');
      const placed = await postOrder(base, { customer_name: 'Unlucky', products_ids: [3] });
      expect(placed.status).toBe(201);
      const id: string = placed.body.id;
      let failed: Order | undefined;
      await waitUntil('the order to show its failed step', async () => {
        failed = (await getOrder(base, id)).body;
        return failed!.status === 'failed';
      });
      expect(failed!.steps.sales).toEqual({
        status: 'failed',
        reason: 'attempts-exhausted',
        error: 'Error: the sales system is down',
        attempts: 3,
        failed_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      });
      await waitUntil('the other steps done', async () => {
        const order: Order = (await getOrder(base, id)).body;
        return order.steps.marketing.status === 'done' && order.steps.warehouse.status === 'done';
      });
      expect((await getOrder(base, id)).body.status).toBe('failed');

      // The sales system is back: the dead letter, still in its queue, is redriven by the CLI.
      sales.refusing.delete('Unlucky');
      const redrive = await run(
        process.execPath,
        [CLI, 'dlq', 'redrive', DEAD_LETTER_QUEUES.sales, '--url', brokerUrl()],
        {
          timeout: 30_000,
        },
      );
      expect(redrive.stdout).toMatch(/^moved 1 message\(s\) from "orders\.sales\.dlq"/m);
      const done = (await waitForCompleted(base, [id], 15_000)).get(id)!;
      expect(done.steps.sales).toMatchObject({ status: 'done' });
      expect(sales.tally.counts.get(id)).toBe(4);
    },
    TEST_TIMEOUT,
  );

  it(
    'answers 404 for an order id it does not know',
    async () => {
      const reply = await getOrder(base, 'no-such-order');
      expect(reply.status).toBe(404);
      expect(reply.body.message).toBe('no order with id no-such-order');
    },
    TEST_TIMEOUT,
  );

  const tooMany = Array.from({ length: MAX_PRODUCTS_PER_ORDER + 1 }, () => 2);
  // [what, raw body, content type, the reason the 400 must give]
  const badRequests: [string, string | undefined, string | undefined, string | RegExp][] = [
    [
      'a form post',
      'customer_name=Ada&products_ids=2',
      'application/x-www-form-urlencoded',
      /must be JSON, sent with content-type application\/json/,
    ],
    ['no body at all', undefined, undefined, /must be JSON, sent with content-type application\/json \(got none\)/],
    ['malformed JSON', '{"customer_name": "Ada",', 'application/json', /JSON/],
    ['a JSON array', '[2, 4]', 'application/json', 'the body must be a JSON object, got an array'],
    ['no customer_name', '{"products_ids": [2]}', 'application/json', 'customer_name is required'],
    [
      'a numeric customer_name',
      '{"customer_name": 7, "products_ids": [2]}',
      'application/json',
      'customer_name must be a string, got number 7',
    ],
    [
      'a blank customer_name',
      '{"customer_name": "  ", "products_ids": [2]}',
      'application/json',
      'customer_name must not be empty',
    ],
    ['no products_ids', '{"customer_name": "Ada"}', 'application/json', 'products_ids is required'],
    [
      'products_ids as a string',
      '{"customer_name": "Ada", "products_ids": "2,4"}',
      'application/json',
      'products_ids must be an array of product ids, got string "2,4"',
    ],
    [
      'empty products_ids',
      '{"customer_name": "Ada", "products_ids": []}',
      'application/json',
      'products_ids must not be empty',
    ],
    [
      'a product id as a string',
      '{"customer_name": "Ada", "products_ids": [2, "4"]}',
      'application/json',
      'products_ids[1] must be a positive integer, got "4"',
    ],
    [
      'a fractional product id',
      '{"customer_name": "Ada", "products_ids": [2.5]}',
      'application/json',
      'products_ids[0] must be a positive integer, got 2.5',
    ],
    [
      'a negative product id',
      '{"customer_name": "Ada", "products_ids": [-4]}',
      'application/json',
      'products_ids[0] must be a positive integer, got -4',
    ],
    [
      'too many products',
      JSON.stringify({ customer_name: 'Ada', products_ids: tooMany }),
      'application/json',
      `products_ids must have at most ${MAX_PRODUCTS_PER_ORDER} entries, got ${MAX_PRODUCTS_PER_ORDER + 1}`,
    ],
    [
      'a misspelt field',
      '{"customer_name": "Ada", "product_ids": [2]}',
      'application/json',
      'products_ids is required; unknown field "product_ids"',
    ],
  ];

  it.each(badRequests)(
    'answers 400 for %s, naming the reason',
    async (_what, body, contentType, reason) => {
      const reply = await http(base, 'POST', '/order', body, contentType);
      expect(reply.status).toBe(400);
      if (typeof reason === 'string') expect(reply.body.message).toBe(reason);
      else expect(reply.body.message).toMatch(reason);
    },
    TEST_TIMEOUT,
  );

  it(
    'refuses unknown product ids with 400 naming them, and sold-out ones with 409',
    async () => {
      const unknown = await postOrder(base, { customer_name: 'Ada', products_ids: [2, 4000, 4, 999, 4000] });
      expect(unknown.status).toBe(400);
      expect(unknown.body.message).toBe('unknown product ids: 4000, 999');

      const soldOut = await postOrder(base, { customer_name: 'Ada', products_ids: [2, 66, 13] });
      expect(soldOut.status).toBe(409);
      expect(soldOut.body.message).toBe('out of stock: product ids 66, 13');
    },
    TEST_TIMEOUT,
  );

  it(
    'lets no refused order reach the queues: neither the stock check nor the order-placed event',
    async () => {
      const tap = await tapOrderPlaced();
      try {
        catalogue.lookups.length = 0;
        for (const [, body, contentType] of badRequests) {
          expect((await http(base, 'POST', '/order', body, contentType)).status).toBe(400);
        }
        // Malformed requests are refused before the stock service is asked.
        expect(catalogue.lookups).toEqual([]);
        expect((await postOrder(base, { customer_name: 'Ada', products_ids: [999] })).status).toBe(400);
        expect((await postOrder(base, { customer_name: 'Ada', products_ids: [13] })).status).toBe(409);
        expect(catalogue.lookups).toEqual([999, 13]);

        // The API publishes on one channel, in order: once this order's event is in, any event
        // of the refused requests would have arrived before it.
        const marker = await postOrder(base, { customer_name: 'Marker', products_ids: [7] });
        expect(marker.status).toBe(201);
        await waitUntil('the marker order on the tap', () => tap.events.some((e) => e.id === marker.body.id));
        expect(tap.events.map((e) => e.customer_name)).toEqual(['Marker']);
      } finally {
        await tap.close();
      }
    },
    TEST_TIMEOUT,
  );
});

// --- Separate processes: node dist/src/main.js <program> ----------------------------------------

/** The API's URL, from its "order service up on http://localhost:PORT" line (it listens on PORT=0). */
/** The API's address once it serves HTTP (it starts before the broker is reached). */
async function httpBase(proc: ProgramProcess): Promise<string> {
  const line = await waitForLine(proc, /order service up on http:\/\/localhost:\d+/, BOOT_MS);
  return `http://127.0.0.1:${/localhost:(\d+)/.exec(line)![1]}`;
}

/** Resolves once `GET /health/ready` answers 200: the API can place orders. */
async function waitForReady(base: string, timeoutMs = 20_000): Promise<void> {
  await waitUntil(
    'GET /health/ready to answer 200',
    async () => (await http(base, 'GET', '/health/ready')).status === 200,
    timeoutMs,
  );
}

/** The API's address once it is ready. */
async function apiBase(proc: ProgramProcess): Promise<string> {
  const base = await httpBase(proc);
  await waitForReady(base);
  return base;
}

/** Starts `orders-api` listening on a port of the system's choosing. */
function startApi(env: NodeJS.ProcessEnv = {}): ProgramProcess {
  return startProgramWithEnv({ PORT: '0', ...env }, 'orders-api');
}

/** `promise`'s value, or `'still running'` if it has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<'still running'>((r) => (timer = setTimeout(r, ms, 'still running'))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Ids of the orders whose id appears in a line of `proc`'s output, with how often. */
function idsIn(procs: ProgramProcess[], ids: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const proc of procs) {
    for (const line of proc.lines) {
      for (const id of ids) if (line.includes(`order ${id}:`)) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * Points the programs this describe block starts (they inherit process.env) at a database of the
 * block's own, and puts the environment back afterwards.
 */
function useFreshDatabaseForPrograms(): { db: () => TestDatabase } {
  let db: TestDatabase | undefined;
  let saved: string | undefined;
  beforeAll(async () => {
    db = await freshDatabase();
    saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = db.url;
  }, HOOK_TIMEOUT);
  afterAll(async () => {
    if (saved === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = saved;
    await db?.drop();
  }, HOOK_TIMEOUT);
  return { db: () => db! };
}

describe('the order service as separate processes', () => {
  useFreshDatabaseForPrograms();
  beforeEach(() => deleteOrdersTopology(), HOOK_TIMEOUT);
  afterEach(() => stopAllPrograms(), HOOK_TIMEOUT);
  afterAll(() => deleteOrdersTopology(), HOOK_TIMEOUT);

  it(
    'orders-api and orders-worker processes complete orders; two sales workers share them, each order once',
    async () => {
      const api = startApi();
      const salesA = startProgram('orders-worker', 'sales');
      const salesB = startProgram('orders-worker', 'sales');
      const marketingW = startProgram('orders-worker', 'marketing');
      const warehouseW = startProgram('orders-worker', 'warehouse');
      const workers = [salesA, salesB, marketingW, warehouseW];
      const base = await apiBase(api);
      for (const w of workers) await waitForLine(w, /order service up: worker /, BOOT_MS);
      expect(api.lines.some((l) => /broker amqp:\/\/.* \(from RABBITMQ_URL\)/.test(l))).toBe(true);
      // Both sales workers consume before the first order, so the broker shares the orders out.
      await waitUntil('two consumers on orders.sales', async () => (await consumerCount('orders.sales')) === 2);

      const count = 40;
      const replies = await Promise.all(
        Array.from({ length: count }, (_, i) => postOrder(base, { customer_name: `split ${i}`, products_ids: [2, 4] })),
      );
      expect(replies.map((r) => r.status)).toEqual(Array(count).fill(201));
      const ids = replies.map((r) => r.body.id as string);
      const completed = await waitForCompleted(base, ids, 60_000);

      // Both sales workers took a share: each step names the instance (host:pid) that did it.
      const salesPids = new Set(
        [...completed.values()].map((order) =>
          Number((order.steps.sales as { worker: string }).worker.split(':').pop()),
        ),
      );
      expect([...salesPids].sort()).toEqual([salesA.pid, salesB.pid].sort());
      await waitUntil("every order in the workers' logs", () =>
        [[salesA, salesB], [marketingW], [warehouseW]].every((procs) => idsIn(procs, ids).size === count),
      );
      for (const procs of [[salesA, salesB], [marketingW], [warehouseW]]) {
        const counts = idsIn(procs, ids);
        expect(ids.filter((id) => counts.get(id) !== 1)).toEqual([]);
      }
      for (const p of [api, ...workers])
        expect({ program: p.label, stderr: p.stderr }).toEqual({ program: p.label, stderr: '' });
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    '`node dist/src/main.js` with no program runs the whole service; on SIGTERM it answers the requests in flight, then exits 0',
    async () => {
      const child: ChildProcess = spawn(process.execPath, [MAIN_JS], {
        env: { ...process.env, RABBITMQ_URL: brokerUrl(), PORT: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (chunk) => (stdout += chunk));
      child.stderr!.on('data', (chunk) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      try {
        await waitUntil(
          'the service to be up',
          () => /order service up on http:\/\/localhost:\d+/.test(stdout),
          BOOT_MS,
        );
        expect(stdout).toMatch(
          /order service up on http:\/\/localhost:\d+: API, stock service, workers sales, marketing, warehouse/,
        );
        const base = `http://127.0.0.1:${/localhost:(\d+)/.exec(stdout)![1]}`;
        await waitForReady(base);
        const placed = await postOrder(base, { customer_name: 'Ada', products_ids: [2, 4] });
        expect(placed.status).toBe(201);
        await waitForCompleted(base, [placed.body.id], 10_000);

        // Stopped while orders arrive: those already in are answered with everything still up,
        // not left to wait for a stock check whose handler has stopped (a 503 after 5 s).
        const inFlight = Array.from({ length: 200 }, (_, i) =>
          postOrder(base, { customer_name: `late ${i}`, products_ids: [2] }).then(
            (r) => r.status,
            () => 'no connection',
          ),
        );
        await Promise.race(inFlight);
        child.kill('SIGTERM');
        const statuses = await Promise.all(inFlight);
        expect(statuses.filter((s) => s !== 201 && s !== 'no connection')).toEqual([]);
        expect(await within(exited, 15_000)).toBe(0);
        expect(stderr).toBe('');
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      }
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'orders-api starts and serves HTTP with the broker down: live 200, ready 503 until the broker comes, then 200; an order placed meanwhile is 201 and completes',
    async () => {
      const proxy = TcpProxy.forUrl(brokerUrl());
      await proxy.start();
      proxy.refuse();
      try {
        const api = startApi({ RABBITMQ_URL: proxy.url(brokerUrl()) });
        const base = await httpBase(api);
        const live = await http(base, 'GET', '/health/live');
        expect(live.status).toBe(200);
        expect(live.body).toMatchObject({ status: 'ok', info: { rabbitmq: { status: 'up' } } });
        const notReady = await http(base, 'GET', '/health/ready');
        expect(notReady.status).toBe(503);
        expect(notReady.body).toMatchObject({
          status: 'error',
          error: { rabbitmq: { status: 'down', started: false, connections: { publish: { connected: false } } } },
        });
        // The API's own stock service checks an order while the broker is away: committed,
        // answered 201, and announced by the outbox once the broker comes.
        const early = await postOrder(base, { customer_name: 'Early', products_ids: [2] });
        expect(early.status).toBe(201);

        proxy.accept();
        await waitForReady(base);
        const workers = STEPS.map((step) => startProgram('orders-worker', step));
        for (const w of workers) await waitForLine(w, /order service up: worker /, 20_000);
        const placed = await postOrder(base, { customer_name: 'Ada', products_ids: [2, 4] });
        expect(placed.status).toBe(201);
        await waitForCompleted(base, [early.body.id, placed.body.id], 20_000);
        expect(api.stderr).toBe('');
      } finally {
        await stopAllPrograms();
        await proxy.stop();
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'GET /metrics after 10 orders: Prometheus text with 10 deliveries per handler, their durations, the publishes and the HTTP requests',
    async () => {
      const service = startProgramWithEnv({ PORT: '0' }, 'orders');
      const base = await apiBase(service);
      const replies = [];
      for (let i = 0; i < 10; i++) replies.push(await postOrder(base, { customer_name: `m${i}`, products_ids: [2] }));
      expect(replies.map((r) => r.status)).toEqual(Array(10).fill(201));
      await waitForCompleted(
        base,
        replies.map((r) => r.body.id as string),
        60_000,
      );
      const response = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(15_000) });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await response.text();
      /** The value of the sample named `name` whose labels include every one of `labels`. */
      const sample = (name: string, labels: Record<string, string>): number | undefined => {
        const line = text
          .split('\n')
          .find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
        return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
      };
      for (const handler of [
        'SalesWorker.onOrderPlaced',
        'MarketingWorker.onOrderPlaced',
        'WarehouseWorker.onOrderPlaced',
      ]) {
        expect({
          handler,
          consumed: sample('messaging_client_consumed_messages_total', { warren_handler: handler }),
        }).toEqual({
          handler,
          consumed: 10,
        });
        expect({
          handler,
          processed: sample('messaging_process_duration_count', { warren_handler: handler, warren_outcome: 'acked' }),
        }).toEqual({ handler, processed: 10 });
      }
      expect(sample('messaging_client_consumed_messages_total', { warren_handler: 'StockService.check' })).toBe(10);
      expect(
        sample('messaging_client_consumed_messages_total', { warren_handler: 'OrdersService.onStepCompleted' }),
      ).toBe(30);
      // 10 OrderPlaced from the outbox and 30 StepCompleted from the workers, all on exchange "orders".
      expect(
        sample('messaging_client_sent_messages_total', {
          messaging_operation_name: 'publish',
          messaging_destination_name: 'orders',
        }),
      ).toBe(40);
      expect(sample('warren_rpc_client_duration_count', { warren_rpc_outcome: 'reply' })).toBe(10);
      // The three workers, the stock service, the API's progress and failures listeners.
      expect(sample('warren_consumers_active', {})).toBe(6);
      expect(
        sample('http_server_request_duration_count', {
          http_request_method: 'POST',
          http_route: '/order',
          http_response_status_code: '201',
        }),
      ).toBe(10);
      // The service's name is the SDK's resource, once, in `target_info`; not a label of each series.
      expect(text).toMatch(/^target_info\{[^}]*service_name="orders"/m);
      expect(text.split('\n').filter((l) => l.startsWith('messaging_') && l.includes('service_name'))).toEqual([]);
      expect(service.stderr).toBe('');
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    '`help` lists the order service programs and the tutorials; an unknown worker is a usage error',
    async () => {
      const help = await runProgram('help');
      expect(help.code).toBe(0);
      for (const name of ['orders-api', 'orders-worker', 'receive_logs_topic', 'rpc_client']) {
        expect(help.lines.some((l) => l.trimStart().startsWith(name))).toBe(true);
      }
      const bad = await runProgram('orders-worker', ['shipping']);
      expect(bad.code).toBe(1);
      expect(bad.stderr.trim()).toBe('Unknown worker "shipping". Usage: orders-worker <sales|marketing|warehouse>...');
    },
    TEST_TIMEOUT,
  );
});

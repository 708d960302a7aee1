import { type RabbitMQ, startRabbitMQ } from 'nestjs-warren/testing';
import { request } from 'node:http';
import pg from 'pg';
import { STEPS } from '../src/orders/contracts.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { type ProgramProcess, startProgramWith, stopAllPrograms, waitForLine } from './support/programs.js';

// The order service under faults, as real processes on one PostgreSQL and this suite's own
// RabbitMQ node (which it kills, as the shared broker of the other suites must not be): two API
// instances, two instances of each worker (two worker processes, each running all three
// departments' workers, as a deployment short of processes would), a worker process SIGKILLed and
// the broker restarted while orders keep coming, then the broker away for 20 s. Nothing answered 201 may be lost, and no
// department may act twice on an order.

const HOOK_TIMEOUT = 120_000;
const BOOT_MS = 90_000;
/** Bounds that end a stuck test; a loaded 2-core machine boots four processes in tens of seconds. */
const TEST_TIMEOUT = 300_000;
const OUTAGE_MS = 20_000;

let broker: RabbitMQ;
let db: TestDatabase;
let pool: pg.Pool;
let apis: ProgramProcess[] = [];
let bases: string[] = [];
/** Two processes, each with every department's worker. */
let workers: ProgramProcess[] = [];

function env(): Record<string, string> {
  return { DATABASE_URL: db.url, RABBITMQ_URL: broker.url, PORT: '0' };
}

async function apiBase(proc: ProgramProcess): Promise<string> {
  const line = await waitForLine(proc, /order service up on http:\/\/localhost:\d+/, BOOT_MS);
  return `http://127.0.0.1:${/localhost:(\d+)/.exec(line)![1]}`;
}

/** Every process still meant to run: a test fails at once, with its output, if one of them exits. */
function alive(): ProgramProcess[] {
  return [...apis, ...workers].filter((p) => !p.status || p.status.signal !== 'SIGKILL');
}

/**
 * One POST on a connection of its own. A reused keep-alive connection races the server closing it
 * when idle (5 s), which a loaded machine loses now and then ("other side closed"): a failure of
 * the test's client, not of the service.
 */
function send(method: 'GET' | 'POST', url: string, payload?: unknown): Promise<{ status: number; body: any }> {
  const body = payload === undefined ? '' : JSON.stringify(payload);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent: false,
        headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {},
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = text;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within 30 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function postOrder(base: string, customer: string): Promise<{ status: number; id?: string }> {
  const reply = await send('POST', `${base}/order`, { customer_name: customer, products_ids: [2, 4] });
  return { status: reply.status, id: (reply.body as { id?: string } | undefined)?.id };
}

/**
 * Places `count` orders with `concurrency` in flight, alternating between the API instances;
 * `during(answered)` runs after each answer, to inject a fault at some point of the run.
 */
async function placeOrders(
  count: number,
  concurrency: number,
  label: string,
  during: (answered: number) => void = () => undefined,
): Promise<{ status: number; id?: string }[]> {
  const replies: { status: number; id?: string }[] = [];
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const n = next++;
      replies[n] = await postOrder(bases[n % bases.length], `${label} ${n}`);
      during(replies.filter(Boolean).length);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return replies;
}

/** The ids of `ids` whose order is not complete yet, straight from the tables. */
async function notCompleted(ids: string[]): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    `SELECT o.id FROM unnest($1::uuid[]) AS o(id)
     WHERE (SELECT count(*) FROM order_steps s WHERE s.order_id = o.id) < $2`,
    [ids, STEPS.length],
  );
  return rows.map((r) => r.id);
}

/** Waits until every order is complete in the database, then checks each through the API. */
async function expectAllCompleted(ids: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pending = await notCompleted(ids);
  while (pending.length > 0) {
    const gone = alive().find((p) => p.status);
    if (gone) throw new Error(`${gone.label} exited while orders were pending:\n${gone.describe()}`);
    if (Date.now() > deadline) {
      throw new Error(
        `${pending.length} of ${ids.length} orders not completed after ${timeoutMs} ms, e.g. ${pending[0]}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
    pending = await notCompleted(ids);
  }
  const statuses = new Map<string, string>();
  for (const [i, id] of ids.entries()) {
    const reply = await send('GET', `${bases[i % bases.length]}/order/${id}`);
    statuses.set(id, reply.status === 200 ? (reply.body as { status: string }).status : `${reply.status}`);
  }
  expect(ids.filter((id) => statuses.get(id) !== 'completed')).toEqual([]);
}

/** `[order, department, rows]` for every order and department without exactly one effect row. */
async function effectsNotOnce(ids: string[]): Promise<[string, string, number][]> {
  const { rows } = await pool.query<{ order_id: string; department: string; n: number }>(
    `SELECT order_id, department, count(*)::int AS n FROM department_effects
     WHERE order_id = ANY($1::uuid[]) GROUP BY 1, 2`,
    [ids],
  );
  const counts = new Map(rows.map((r) => [`${r.order_id} ${r.department}`, r.n]));
  return ids.flatMap((id) =>
    STEPS.map((step): [string, string, number] => [id, step, counts.get(`${id} ${step}`) ?? 0]).filter(
      ([, , n]) => n !== 1,
    ),
  );
}

/** The orders a worker process has handled so far, from its department's log line. */
function handled(proc: ProgramProcess): number {
  // Nest colours its lines: the context and the message are apart by escape codes.
  return proc.matching(/(SalesSystem|MarketingStatistics|WarehousePrinter)\W.*order [0-9a-f]{8}-/).length;
}

beforeAll(async () => {
  [broker, db] = await Promise.all([startRabbitMQ({ private: true, management: false }), freshDatabase()]);
  pool = new pg.Pool({ connectionString: db.url });
  // The first API creates the tables; the others join a database that has them.
  const first = startProgramWith(env(), 'orders-api');
  bases = [await apiBase(first)];
  const second = startProgramWith(env(), 'orders-api');
  workers = [startProgramWith(env(), 'orders-worker', ...STEPS), startProgramWith(env(), 'orders-worker', ...STEPS)];
  apis = [first, second];
  bases.push(await apiBase(second));
  for (const w of workers) await waitForLine(w, /order service up: workers sales, marketing, warehouse/, BOOT_MS);
}, HOOK_TIMEOUT + BOOT_MS);

afterAll(async () => {
  await stopAllPrograms();
  await pool?.end();
  await db?.drop();
  await broker?.stop();
}, HOOK_TIMEOUT);

it(
  '500 orders across two APIs and two instances of each worker, one worker SIGKILLed and the broker restarted mid-run: every order answered 201 completes, each department acting once per order',
  async () => {
    const victim = workers[0];
    let killed: Promise<unknown> | undefined;
    let handledBeforeKill = 0;
    let restarted: Promise<void> | undefined;
    const replies = await placeOrders(500, 16, 'faults', (answered) => {
      // Mid-run: the victim dies holding deliveries and, likely, an open inbox transaction,
      // which its broker connection and its database session take with them.
      if (!killed && answered >= 150) {
        handledBeforeKill = handled(victim);
        killed = victim.kill('SIGKILL');
      }
      if (!restarted && answered >= 300) restarted = broker.kill!().then(() => broker.restart!());
    });
    expect(await killed).toEqual({ code: null, signal: 'SIGKILL' });
    expect(handledBeforeKill).toBeGreaterThan(0);
    await restarted;
    // The broker's restart must not cost an order: the API checks the stock itself meanwhile.
    expect(replies.filter((r) => r.status !== 201)).toEqual([]);
    const ids = replies.map((r) => r.id!);
    expect(new Set(ids).size).toBe(500);

    await expectAllCompleted(ids, 180_000);
    expect(await effectsNotOnce(ids)).toEqual([]);
    // The surviving worker process took over the victim's share, in every department.
    expect(handled(workers[1])).toBeGreaterThan(0);
  },
  TEST_TIMEOUT,
);

it(
  'the broker down for 20 s while orders keep coming: POST /order answers 201 throughout, the outbox holds the announcements, and all complete once the broker is back',
  async () => {
    const before = await placeOrders(10, 4, 'before outage');
    expect(before.map((r) => r.status)).toEqual(Array(10).fill(201));
    await expectAllCompleted(
      before.map((r) => r.id!),
      60_000,
    );

    await broker.kill!();
    const downSince = Date.now();
    const during: { status: number; id?: string }[] = [];
    while (Date.now() - downSince < OUTAGE_MS) {
      during.push(...(await placeOrders(4, 4, 'during outage')));
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(during.filter((r) => r.status !== 201)).toEqual([]);
    const duringIds = during.map((r) => r.id!);
    // Committed and not announced: the outbox holds every one of them until the broker is back.
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM warren_outbox
       WHERE sent_at IS NULL AND routing_key = 'order.placed'
         AND convert_from(content, 'UTF8')::jsonb ->> 'id' = ANY($1::text[])`,
      [duringIds],
    );
    expect(rows[0].n).toBe(duringIds.length);
    expect((await notCompleted(duringIds)).sort()).toEqual([...duringIds].sort());

    await broker.restart!();
    const after = await placeOrders(10, 4, 'after outage');
    expect(after.map((r) => r.status)).toEqual(Array(10).fill(201));
    const ids = [...duringIds, ...after.map((r) => r.id!)];
    await expectAllCompleted(ids, 120_000);
    expect(await effectsNotOnce(ids)).toEqual([]);
  },
  TEST_TIMEOUT,
);

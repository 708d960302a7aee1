import { jest } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import amqplib from 'amqplib';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Consume, FAILURE_HEADERS, WarrenModule } from 'nestjs-warren';
import { freePort, type RabbitMQ, startRabbitMQ } from 'nestjs-warren/testing';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';
import { freshDatabase } from './support/database.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'libs/warren/dist/esm/cli/main.js');
const ORDERS_APP = join(ROOT, 'dist/src/orders/app.module.js');
const run = promisify(execFile);

// Each `warren topology` of the order service boots its whole module in a fresh process, with an
// in-memory PGlite (PostgreSQL in WebAssembly: seconds of CPU to start) for its database.
jest.setTimeout(180_000);

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `warren …args` to its end (bounded), as a user would. */
async function warren(...args: string[]): Promise<CliRun> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      timeout: 120_000,
      env: { ...process.env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; signal?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The rabbitmqctl beside the rabbitmq-server the testing kit starts nodes with. */
function rabbitmqctl(): string {
  const servers = [process.env.RABBITMQ_SERVER, ...SERVER_CANDIDATES].filter((s): s is string => !!s);
  const server = servers.find((s) => existsSync(s));
  if (!server) throw new Error(`no rabbitmq-server install found (${servers.join(', ')})`);
  return join(dirname(server), 'rabbitmqctl');
}
const SERVER_CANDIDATES = [
  '/usr/lib/rabbitmq/bin/rabbitmq-server',
  '/usr/local/sbin/rabbitmq-server',
  '/opt/homebrew/sbin/rabbitmq-server',
];

/** A management API client for one broker. */
function managementOf(base: string) {
  const url = new URL(base);
  const auth = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
  url.username = '';
  url.password = '';
  return async <T = unknown>(path: string, init: RequestInit = {}): Promise<T> => {
    const response = await fetch(new URL(path, url), {
      ...init,
      headers: { authorization: auth, 'content-type': 'application/json' },
    });
    if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${response.status} ${await response.text()}`);
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  };
}

/** JSON with sorted keys: the API need not list arguments in the order they were declared. */
const sorted = (value: object) =>
  JSON.stringify(Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b))));

type Binding = {
  source: string;
  destination: string;
  destination_type: string;
  routing_key: string;
  arguments: object;
};
const bindingList = (all: Binding[]) =>
  all
    .filter((b) => b.source !== '')
    .map((b) => `${b.source} -> ${b.destination_type}:${b.destination} [${b.routing_key}] ${sorted(b.arguments)}`)
    .sort();

describe('warren topology', () => {
  it('prints the exchanges, queues, bindings and handlers the order service declares, and who declared each', async () => {
    const { code, stdout, stderr } = await warren('topology', ORDERS_APP);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('connection default');
    expect(stdout).toMatch(
      /orders {2}topic durable {2}← WarrenModule options \(topology\), OrdersService\.onStepCompleted, SalesWorker\.onOrderPlaced/,
    );
    expect(stdout).toContain(
      'orders → orders.sales  order.placed  ← WarrenModule options (topology), SalesWorker.onOrderPlaced',
    );
    expect(stdout).toContain('@RpcHandler StockService.check  queue orders.stock-check');
    const json = JSON.parse((await warren('topology', ORDERS_APP, '--json')).stdout);
    expect(json.connections[0].handlers.map((h: { label: string }) => h.label)).toContain(
      'WarehouseWorker.onOrderPlaced',
    );
  });

  it('says clearly what is wrong: no such file, a file that exports no module, an unknown option', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warren-cli-'));
    try {
      const file = join(dir, 'not-a-module.mjs');
      await writeFile(file, 'export const answer = 42;\n');
      const notModule = await warren('topology', file);
      expect(notModule.code).toBe(2);
      expect(notModule.stderr).toBe(
        `warren: ${file} exports no Nest module (a @Module() class, or a DynamicModule such as AppModule.forRoot({...})); it exports answer\n`,
      );
      const missing = await warren('topology', join(dir, 'nowhere.js'));
      expect(missing.stderr).toBe(`warren: ${join(dir, 'nowhere.js')}: no such file\n`);
      const unknown = await warren('topology', ORDERS_APP, '--jsn');
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toMatch(/^warren: unknown option --jsn\n/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('on a fresh broker', () => {
    let fresh: RabbitMQ;
    let api: ReturnType<typeof managementOf>;
    const amqpIn = (vhost: string) => `${fresh.url}/${vhost}`;
    /** The private broker's management API is on a port of its own, not 15672. */
    const managementPort = () => {
      const url = new URL(fresh.managementUrl!);
      return `http://127.0.0.1:${url.port}`;
    };

    beforeAll(async () => {
      fresh = await startRabbitMQ({ private: true });
      api = managementOf(fresh.managementUrl!);
    }, 120_000);
    afterAll(async () => {
      await fresh?.stop();
    });

    /**
     * The order service, booted for real on `url` so that it declares its topology itself. Its
     * database (which the API and the workers need to be built) is one of its own, dropped as
     * the app closes.
     */
    async function bootOrdersOn(url: string): Promise<{ close(): Promise<void> }> {
      const { OrdersModule } = await import('../src/orders/orders.module.js');
      const { STEPS } = await import('../src/orders/contracts.js');
      const { openOrdersDatabase } = await import('../src/orders/database.js');
      const testDb = await freshDatabase();
      const database = await openOrdersDatabase({ kind: 'postgres', url: testDb.url, source: 'DATABASE_URL' });
      const app = await NestFactory.createApplicationContext(
        OrdersModule.forRoot({
          api: true,
          stock: true,
          workers: STEPS,
          url,
          database,
          warren: { connectTimeoutMs: 10_000 },
        }),
        { logger: ['error'], abortOnError: false },
      );
      return {
        async close() {
          await app.close();
          await database.close();
          await testDb.drop();
        },
      };
    }

    async function addVhost(name: string) {
      await api(`/api/vhosts/${name}`, { method: 'PUT' });
      await api(`/api/permissions/${name}/guest`, {
        method: 'PUT',
        body: JSON.stringify({ configure: '.*', write: '.*', read: '.*' }),
      });
    }

    it('--definitions, imported with rabbitmqctl import_definitions, gives the very bindings the app declares itself', async () => {
      const defs = await warren('topology', ORDERS_APP, '--definitions', '--vhost', 'imported');
      expect(defs.code).toBe(0);
      const dir = await mkdtemp(join(tmpdir(), 'warren-defs-'));
      try {
        const file = join(dir, 'definitions.json');
        await writeFile(file, defs.stdout);
        if (fresh.nodeName) {
          // A local node: the rabbitmqctl of its install, as an operator would run it (the one
          // beside rabbitmq-server, not Debian's wrapper, which switches to another user and cookie).
          await run(rabbitmqctl(), ['-n', fresh.nodeName, 'import_definitions', file], {
            timeout: 60_000,
          });
        } else {
          // A Docker broker: the management API's import is the same code as rabbitmqctl's.
          await api('/api/definitions', { method: 'POST', body: defs.stdout });
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }

      await addVhost('declared');
      const app = await bootOrdersOn(amqpIn('declared'));
      await app.close();

      const imported = bindingList(await api<Binding[]>('/api/bindings/imported'));
      const declared = bindingList(await api<Binding[]>('/api/bindings/declared'));
      expect(imported.length).toBeGreaterThan(5);
      expect(imported).toEqual(declared);
      const queues = async (vhost: string) =>
        (await api<{ name: string; durable: boolean; arguments: object }[]>(`/api/queues/${vhost}`))
          .map((q) => `${q.name} ${q.durable} ${sorted(q.arguments)}`)
          .sort();
      expect(await queues('imported')).toEqual(await queues('declared'));
    });

    it('--diff names what is missing, different and left over after a binding is deleted by hand', async () => {
      await addVhost('diffed');
      const app = await bootOrdersOn(amqpIn('diffed'));
      await app.close();
      const same = await warren('topology', ORDERS_APP, '--diff', amqpIn('diffed'), '--management', managementPort());
      expect(same).toMatchObject({ code: 0, stderr: '' });
      expect(same.stdout).toBe(`the broker's vhost "diffed" holds exactly what the app declares\n`);

      // By hand, as an operator would: the binding of orders.sales goes, a queue nobody declares comes.
      await api('/api/bindings/diffed/e/orders/q/orders.sales/order.placed', { method: 'DELETE' });
      await api('/api/queues/diffed/orders.old', { method: 'PUT', body: JSON.stringify({ durable: true }) });
      await api('/api/queues/diffed/orders.progress.dlq', { method: 'DELETE' });
      await api('/api/queues/diffed/orders.progress.dlq', {
        method: 'PUT',
        body: JSON.stringify({ durable: true, arguments: { 'x-max-length': 10 } }),
      });
      const drift = await warren('topology', ORDERS_APP, '--diff', amqpIn('diffed'), '--management', managementPort());
      expect(drift.code).toBe(1);
      expect(drift.stdout).toBe(
        [
          'missing (declared by the app, not on the broker):',
          '  binding "orders" → "orders.sales" with routing key "order.placed"',
          'different (on the broker with other properties):',
          '  queue "orders.progress.dlq": arguments {} here, {"x-max-length":10} on the broker',
          'left over (on the broker, declared by nothing in the app):',
          '  queue "orders.old"',
          '',
        ].join('\n'),
      );
    });

    it('--diff without a management API, and credentials never in the error', async () => {
      const port = await freePort();
      const url = new URL(fresh.url);
      url.password = 's3cret-pass';
      const result = await warren(
        'topology',
        ORDERS_APP,
        '--diff',
        url.href,
        '--management',
        `http://127.0.0.1:${port}`,
      );
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(
        new RegExp(
          `^warren: no RabbitMQ management API answers at http://127\\.0\\.0\\.1:${port}/ \\(.*\\): enable the plugin`,
        ),
      );
      expect(result.stderr).not.toContain('s3cret-pass');
    });
  });
});

describe('warren dlq', () => {
  const QUEUE = unique('e2e.cli.work');
  const DLQ = `${QUEUE}.dlq`;

  afterAll(async () => {
    await deleteTopology({ queues: [QUEUE, DLQ] });
  });

  it('lists and peeks the dead letters Warren made, with when, why, from where, how many attempts', async () => {
    @Injectable()
    class Failing {
      @Consume(QUEUE, { failure: { mode: 'retry', retryDelays: [50] } })
      work(): never {
        throw new Error('the warehouse printer is out of paper');
      }
    }
    @Module({ imports: [WarrenModule.forRoot({ url: brokerUrl() })], providers: [Failing] })
    class FailingModule {}
    const app = await NestFactory.createApplicationContext(FailingModule, { logger: false, abortOnError: false });
    const connection = await amqplib.connect(brokerUrl());
    const channel = await connection.createChannel();
    try {
      for (const id of ['a-1', 'a-2']) {
        channel.sendToQueue(QUEUE, Buffer.from(JSON.stringify({ id })), {
          messageId: id,
          contentType: 'application/json',
        });
      }
      await waitUntil('two dead letters', async () => (await channel.checkQueue(DLQ)).messageCount === 2);
    } finally {
      await app.close();
      await connection.close();
    }
    const list = await warren('dlq', 'list', DLQ, '--url', brokerUrl());
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toBe(`2 message(s) in "${DLQ}"`);
    expect(lines[1]).toMatch(
      new RegExp(
        `^ +1 {2}a-1 {2}\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z {2}attempts-exhausted {2}from ${QUEUE} {2}attempts 2 {2}Error: the warehouse printer is out of paper$`,
      ),
    );
    const peek = await warren('dlq', 'peek', DLQ, '--url', brokerUrl(), '--count', '1');
    expect(peek.stdout).toContain('#1 message id a-1');
    expect(peek.stdout).toContain(`came from queue ${QUEUE} (exchange "", routing key "${QUEUE}")`);
    expect(peek.stdout).toContain('body (application/json, 12 bytes): {"id":"a-1"}');
    // Reading took nothing away.
    expect((await warren('dlq', 'list', DLQ, '--url', brokerUrl())).stdout).toMatch(/^2 message\(s\)/);

    const purge = await warren('dlq', 'purge', DLQ, '--url', brokerUrl());
    expect(purge.code).toBe(2);
    expect(purge.stderr).toMatch(
      new RegExp(`^warren: purge deletes the 2 message\\(s\\) of "${DLQ}" for good: add --yes`),
    );
    expect((await warren('dlq', 'purge', DLQ, '--url', brokerUrl(), '--yes')).stdout).toBe(
      `purged 2 message(s) from "${DLQ}"\n`,
    );
  });

  it('says so when there is no broker, or no such queue, without the password', async () => {
    const port = await freePort();
    const none = await warren('dlq', 'list', 'q', '--url', `amqp://guest:s3cret@127.0.0.1:${port}`);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(
      new RegExp(`^warren: cannot connect to RabbitMQ at amqp://127\\.0\\.0\\.1:${port}/: ECONNREFUSED`),
    );
    expect(none.stderr).not.toContain('s3cret');
    const missing = await warren('dlq', 'list', unique('nowhere'), '--url', brokerUrl());
    expect(missing.stderr).toMatch(/^warren: no queue "nowhere\.[0-9a-f]+" on amqp:\/\/127\.0\.0\.1:\d+\/\n$/);
  });

  it('redrive of 1 000 dead letters, SIGKILLed mid-way and run again: every message back, none lost, duplicates only of the batch in flight', async () => {
    const connection = await amqplib.connect(brokerUrl());
    const channel = await connection.createConfirmChannel();
    const BATCH = 20;
    try {
      await channel.assertQueue(QUEUE, { durable: true });
      await channel.assertQueue(DLQ, { durable: true });
      await channel.purgeQueue(QUEUE);
      await channel.purgeQueue(DLQ);
      for (let i = 0; i < 1000; i++) {
        channel.sendToQueue(DLQ, Buffer.from(JSON.stringify({ n: i })), {
          messageId: `m-${i}`,
          persistent: true,
          headers: {
            [FAILURE_HEADERS.queue]: QUEUE,
            [FAILURE_HEADERS.reason]: 'handler-error',
            [FAILURE_HEADERS.attempts]: 1,
          },
        });
      }
      await channel.waitForConfirms();

      const cli: ChildProcess = spawn(
        process.execPath,
        [CLI, 'dlq', 'redrive', DLQ, '--url', brokerUrl(), '--batch', String(BATCH)],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      cli.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
        cli.once('close', (code, signal) => resolve(signal ?? code)),
      );
      await waitUntil('the redrive to be under way', () => /redriven (\d{3})/.test(out), 30_000);
      cli.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      expect(out).not.toMatch(/^moved/m);

      const rerun = await warren('dlq', 'redrive', DLQ, '--url', brokerUrl(), '--batch', String(BATCH));
      expect(rerun.code).toBe(0);
      expect(rerun.stdout).toMatch(/moved \d+ message\(s\) from .* back to the queues they came from\n$/);

      expect((await channel.checkQueue(DLQ)).messageCount).toBe(0);
      const seen = new Map<string, number>();
      for (;;) {
        const message = await channel.get(QUEUE, { noAck: true });
        if (!message) break;
        const id = String(message.properties.messageId);
        seen.set(id, (seen.get(id) ?? 0) + 1);
        // Back as it was, without the failure's record: its handler tries it afresh.
        expect(message.properties.headers?.[FAILURE_HEADERS.reason]).toBeUndefined();
      }
      const ids = Array.from({ length: 1000 }, (_, i) => `m-${i}`);
      expect(ids.filter((id) => !seen.has(id))).toEqual([]);
      const duplicates = [...seen.values()].reduce((sum, n) => sum + n - 1, 0);
      // The batch in flight at the kill (copies published, originals not yet acked) comes twice; nothing else.
      expect(duplicates).toBeLessThanOrEqual(BATCH);
      expect(seen.size).toBe(1000);
    } finally {
      await connection.close();
    }
  });
});

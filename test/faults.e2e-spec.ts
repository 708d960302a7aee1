import { Injectable, type INestApplicationContext } from '@nestjs/common';
import amqplib, { type ChannelModel } from 'amqplib';
import {
  Consume,
  ConsumerRegistry,
  Publisher,
  PublishError,
  RpcChannelLostError,
  RpcClient,
  Subscribe,
  type WarrenContext,
} from 'nestjs-warren';
import { type RabbitMQ, startRabbitMQ } from 'nestjs-warren/testing';
import { bootApp } from './support/app.js';
import { bindingsFrom, brokerUrl, deleteTopology, management, unique, waitUntil } from './support/broker.js';
import { startProgram, stopAllPrograms, waitForLine } from './support/programs.js';
import { TcpProxy } from './support/tcp-proxy.js';

// Fault tests: every wait is bounded, and every broker, proxy and process they start is stopped.

describe('a connection cut between app and broker (TCP proxy)', () => {
  const X = unique('e2e.faults-x');
  const WORK = unique('e2e.faults-work');
  const SILENT = unique('e2e.faults-silent');

  @Injectable()
  class Handlers {
    broadcast: string[] = [];
    work: string[] = [];
    @Subscribe(X, 'news.#')
    onNews(payload: { id: string }) {
      this.broadcast.push(payload.id);
    }
    @Consume(WORK)
    onWork(payload: { id: string }) {
      this.work.push(payload.id);
    }
  }

  let proxy: TcpProxy;
  let app: INestApplicationContext;
  let direct: ChannelModel;

  beforeAll(async () => {
    proxy = TcpProxy.forUrl(brokerUrl());
    await proxy.start();
    app = await bootApp(
      { providers: [Handlers] },
      {
        url: proxy.url(brokerUrl()),
        reconnectDelayMs: 100,
        maxBufferedPublishes: 100,
        topology: { queues: [{ name: SILENT, durable: false }] },
      },
    );
    direct = await amqplib.connect(brokerUrl());
  });

  afterAll(async () => {
    await app?.close();
    await proxy?.stop();
    await direct?.close();
    await deleteTopology({
      exchanges: [X],
      queues: [WORK, SILENT, `${WORK}.dlq`],
    });
  });

  /** Publishes on a connection of the test's own, straight to the broker, until `done()` holds. */
  async function publishUntil(what: string, send: () => void, done: () => boolean) {
    const ch = await direct.createChannel();
    await waitUntil(
      what,
      async () => {
        send();
        await new Promise((r) => setTimeout(r, 30));
        return done();
      },
      20_000,
    );
    await ch.close();
  }

  it('comes back exactly as the app left it: decorated and runtime consumers back once, cancelled ones gone', async () => {
    const handlers = app.get(Handlers);
    const registry = app.get(ConsumerRegistry);
    const added: string[] = [];
    const removed: string[] = [];
    const kept = await registry.subscribe(X, 'alerts.*', (p: { id: string }) => void added.push(p.id), {
      label: 'kept',
    });
    const cancelled = await registry.subscribe(X, 'alerts.*', (p: { id: string }) => void removed.push(p.id), {
      label: 'cancelled',
    });
    await cancelled.cancel();

    await proxy.cutAndAwaitReconnect(2);

    const ch = await direct.createChannel();
    const tag = unique('after-cut');
    await publishUntil(
      'the decorated subscription to receive again',
      () => ch.publish(X, 'news.today', Buffer.from(JSON.stringify({ id: tag })), { contentType: 'application/json' }),
      () => handlers.broadcast.includes(tag),
    );
    await publishUntil(
      'the runtime subscription to receive again',
      () => ch.publish(X, 'alerts.fire', Buffer.from(JSON.stringify({ id: tag })), { contentType: 'application/json' }),
      () => added.includes(tag),
    );
    ch.sendToQueue(WORK, Buffer.from(JSON.stringify({ id: tag })), { contentType: 'application/json' });
    await waitUntil('the work queue consumer to receive again', () => handlers.work.includes(tag));
    expect(removed).toEqual([]);

    // One consumer per queue: nothing doubled by the reconnect, nothing left of the cancelled one.
    const bindings = await bindingsFrom(X);
    expect(bindings.map(([, key]) => key).sort()).toEqual(['alerts.*', 'news.#']);
    // (Exclusive queues can only be inspected from their own connection: ask the management API,
    // whose figures settle within seconds: a doubled consumer would keep the count at 2.)
    for (const queue of [...bindings.map(([q]) => q), WORK]) {
      await waitUntil(
        `one consumer on ${queue}`,
        async () => {
          const info = await management<{ consumers: number }>(`/api/queues/%2F/${encodeURIComponent(queue)}`);
          return info.consumers === 1;
        },
        20_000,
      );
    }
    expect(
      registry
        .list()
        .map((c) => c.label)
        .sort(),
    ).toEqual(['Handlers.onNews', 'Handlers.onWork', 'kept']);
    await kept.cancel();
  }, 60_000);

  it('keeps a paused consumer paused across a reconnect, with its queue and messages, until resumed', async () => {
    const queue = unique('e2e.faults-paused');
    const got: number[] = [];
    const handle = await app
      .get(ConsumerRegistry)
      .consume(queue, (p: { n: number }) => void got.push(p.n), { failure: 'drop' });
    await handle.pause();
    await proxy.cutAndAwaitReconnect(2);
    const ch = await direct.createConfirmChannel();
    // The queue was re-declared by the reconnect even though nothing consumes it.
    await waitUntil('the queue to exist again', async () => {
      const probe = await direct.createChannel();
      probe.on('error', () => undefined);
      const ok = await probe.checkQueue(queue).then(
        () => true,
        () => false,
      );
      await probe.close().catch(() => undefined);
      return ok;
    });
    for (let n = 0; n < 5; n++)
      ch.sendToQueue(queue, Buffer.from(JSON.stringify({ n })), { contentType: 'application/json' });
    await ch.waitForConfirms();
    expect((await ch.checkQueue(queue)).consumerCount).toBe(0);
    expect(handle.paused).toBe(true);
    expect(got).toEqual([]);
    await handle.resume();
    await waitUntil('the five messages after resume', () => got.length === 5);
    expect(got).toEqual([0, 1, 2, 3, 4]);
    await handle.cancel();
    await ch.deleteQueue(queue);
    await ch.close();
  }, 60_000);

  it('buffers publishes while the broker is unreachable, bounded, and confirms them after reconnect', async () => {
    const handlers = app.get(Handlers);
    const publisher = app.get(Publisher);
    proxy.refuse();
    await waitUntil('the app to notice', () => proxy.connections === 0);
    const ids = Array.from({ length: 100 }, (_, i) => `buffered-${i}`);
    const accepted = ids.map((id) => publisher.sendToQueue(WORK, { id }));
    // The 101st does not fit: a clear error at once, not silent loss.
    const overflow = await publisher.sendToQueue(WORK, { id: 'one-too-many' }).catch((e: unknown) => e);
    expect(overflow).toBeInstanceOf(PublishError);
    expect((overflow as Error).message).toBe(
      `Cannot publish to queue "${WORK}": 100 messages are already waiting for the broker (maxBufferedPublishes)`,
    );
    proxy.accept();
    await Promise.all(accepted);
    await waitUntil('every buffered message handled', () => ids.every((id) => handlers.work.includes(id)), 20_000);
    expect(handlers.work).not.toContain('one-too-many');
  }, 60_000);

  it('fails an RPC call in flight with a clear error when the connection is cut, and serves the next', async () => {
    const client = app.get(RpcClient);
    const call = client.call(SILENT, 1, { timeout: 60_000 });
    await waitUntil('the call to be pending', () => client.pendingCalls === 1);
    await proxy.cutAndAwaitReconnect(2);
    await expect(call).rejects.toBeInstanceOf(RpcChannelLostError);
    await expect(client.call(SILENT, 2, { timeout: 300 })).rejects.toThrow(
      `RPC to "${SILENT}" got no reply within 300 ms`,
    );
  }, 60_000);
});

describe("a connection cut at any point of an app's life", () => {
  const X = unique('e2e.lifecut-x');
  const WORK = unique('e2e.lifecut-work');
  const MODULE_QUEUE = unique('e2e.lifecut-module');

  @Injectable()
  class Handlers {
    work: string[] = [];
    @Subscribe(X, 'news.#')
    onNews() {}
    @Consume(WORK)
    onWork(payload: { id: string }) {
      this.work.push(payload.id);
    }
  }

  let proxy: TcpProxy;

  beforeAll(async () => {
    proxy = TcpProxy.forUrl(brokerUrl());
    await proxy.start();
  });

  afterAll(async () => {
    await proxy?.stop();
    await deleteTopology({ exchanges: [X], queues: [WORK, MODULE_QUEUE, `${WORK}.dlq`] });
  });

  /**
   * Boots the app through the proxy, publishes one message and waits for its handler, shuts down;
   * the proxy cuts every connection once the app has sent `cutAfter` bytes. Returns the bytes sent.
   */
  async function lifeOfApp(cutAfter: number | undefined): Promise<number> {
    const start = proxy.bytesFromClients;
    if (cutAfter !== undefined) proxy.cutAfter(cutAfter);
    const app = await bootApp(
      { providers: [Handlers] },
      {
        url: proxy.url(brokerUrl()),
        reconnectDelayMs: 20,
        topology: { queues: [{ name: MODULE_QUEUE, durable: false }] },
      },
    );
    try {
      const id = unique('life');
      await app.get(Publisher).sendToQueue(WORK, { id });
      await waitUntil('the message to be handled', () => app.get(Handlers).work.includes(id));
    } finally {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        app.close(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('shutdown hung')), 10_000);
        }),
      ]).finally(() => clearTimeout(timer));
    }
    return proxy.bytesFromClients - start;
  }

  it('boots, handles and shuts down wherever the cut falls: no boot error, no hang, no unhandled rejection', async () => {
    // A life without a cut measures how many bytes one takes; then the cut moves through it.
    const bytes = await lifeOfApp(undefined);
    const points = 40;
    const failures: string[] = [];
    for (let i = 0; i < points; i++) {
      const at = Math.round(((i + 0.5) * bytes) / points);
      await lifeOfApp(at).catch((err: Error) => failures.push(`cut after ${at} of ${bytes} bytes: ${err.message}`));
    }
    // (An amqplib promise left to reject unhandled when the link dies fails this test too: jest reports it.)
    expect(failures).toEqual([]);
  }, 120_000);
});

describe('a broker killed and restarted mid-stream', () => {
  const QUEUE = unique('e2e.restart');
  const TOTAL = 20_000;
  let broker: RabbitMQ;
  let app: INestApplicationContext | undefined;

  @Injectable()
  class Counter {
    seen = new Set<number>();
    deliveries = 0;
    @Consume(QUEUE, { prefetch: 200 })
    on(payload: { n: number }, _ctx: WarrenContext) {
      this.deliveries++;
      this.seen.add(payload.n);
    }
  }

  beforeAll(async () => {
    // A private node: this test kills it, which the shared broker of the other suites must not suffer.
    broker = await startRabbitMQ({ private: true, management: false });
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await broker?.stop();
  }, 60_000);

  it(`handles all ${TOTAL} persistent messages at least once across two restarts`, async () => {
    app = await bootApp(
      { providers: [Counter] },
      { url: broker.url, reconnectDelayMs: 200, maxBufferedPublishes: 50_000 },
    );
    const counter = app.get(Counter);
    const publisher = app.get(Publisher);
    const restartAt = new Set([Math.floor(TOTAL / 4), Math.floor((TOTAL * 3) / 5)]);
    let restarts = 0;
    const window: Promise<void>[] = [];
    for (let n = 0; n < TOTAL; n++) {
      if (restartAt.has(n)) {
        await broker.kill!();
        await broker.restart!();
        restarts++;
      }
      window.push(publisher.sendToQueue(QUEUE, { n }));
      // A bounded number of unconfirmed publishes, as a real producer would keep.
      if (window.length >= 500) await Promise.all(window.splice(0));
    }
    await Promise.all(window);
    await waitUntil(`all ${TOTAL} messages handled`, () => counter.seen.size === TOTAL, 120_000);
    expect(restarts).toBe(2);
    const duplicates = counter.deliveries - counter.seen.size;
    console.log(
      `broker restarts: ${restarts}; deliveries: ${counter.deliveries}; duplicates: ${duplicates}; lost: ${TOTAL - counter.seen.size}`,
    );
    expect(counter.seen.size).toBe(TOTAL);
  }, 240_000);
});

describe('SIGTERM during a backlog', () => {
  afterEach(() => stopAllPrograms(), 20_000);

  it('finishes the task in hand, returns the rest, and a restarted worker handles all 1 000', async () => {
    await deleteTopology({ queues: ['task_queue'] });
    const connection = await amqplib.connect(brokerUrl());
    const ch = await connection.createConfirmChannel();
    await ch.assertQueue('task_queue', { durable: true });
    for (let i = 0; i < 1000; i++)
      ch.sendToQueue('task_queue', Buffer.from(`task-${i}`), { persistent: true, contentType: 'text/plain' });
    await ch.waitForConfirms();
    await connection.close();

    const received = (p: { matching(m: RegExp): string[] }) => p.matching(/^ \[x\] Received /).map((l) => l.slice(14));
    const first = startProgram('worker');
    await waitForLine(first, (line) => line === ' [x] Received task-100', 30_000);
    const status = await first.kill('SIGTERM');
    expect(status.code).toBe(0);
    // Graceful: the task in hand was finished before the worker left.
    expect(first.matching(/^ \[x\] Done$/).length).toBe(received(first).length);
    expect(first.stderr).toBe('');

    const second = startProgram('worker');
    const all = () => new Set([...received(first), ...received(second)]);
    await waitForLine(second, () => all().size === 1000, 60_000);
    expect(all().size).toBe(1000);
    await deleteTopology({ queues: ['task_queue'] });
  }, 120_000);
});

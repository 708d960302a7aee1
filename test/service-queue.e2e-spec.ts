import { Injectable, type INestApplicationContext } from '@nestjs/common';
import {
  Consume,
  ConsumerRegistry,
  FAILURE_HEADERS,
  Publisher,
  retryQueueName,
  Subscribe,
  TopologyError,
  WarrenConnection,
  type WarrenContext,
} from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';
import { logged } from './support/logs.js';

/**
 * Service queues: several handlers on one named queue, each message dispatched to the method whose
 * binding matches its original route. Every case runs on RabbitMQ and on the in-memory broker,
 * with the same app.
 */

const TOPIC = unique('e2e.svc-topic');
const DIRECT = unique('e2e.svc-direct');
const SVC = unique('e2e.svc');
const DLQ = `${SVC}.dlq`;

interface Handled {
  method: string;
  key: string;
  n: number;
  attempt: number;
  ok: boolean;
}

/** What every handler does: records, and fails the first attempt of every eighth message. */
function handle(log: Handled[], method: string, payload: { n: number }, ctx: WarrenContext): void {
  const ok = !(ctx.attempt === 1 && payload.n % 8 === 0);
  log.push({ method, key: ctx.routingKey, n: payload.n, attempt: ctx.attempt, ok });
  if (!ok) throw new Error(`first attempt of ${payload.n} fails`);
}

const log: Handled[] = [];
const deadLetters: { key: unknown; reason: unknown; error: unknown }[] = [];

@Injectable()
class Orders {
  @Subscribe(TOPIC, 'order.placed', { queue: SVC, failure: { retryDelays: [200] } })
  onPlaced(payload: { n: number }, ctx: WarrenContext) {
    handle(log, 'Orders.onPlaced', payload, ctx);
  }

  @Subscribe(TOPIC, 'order.cancelled.*', { queue: SVC, failure: { retryDelays: [200] } })
  onCancelled(payload: { n: number }, ctx: WarrenContext) {
    handle(log, 'Orders.onCancelled', payload, ctx);
  }
}

@Injectable()
class Logistics {
  // Its own retry schedule: per-method failure options stay the method's.
  @Subscribe(TOPIC, 'shipment.#', { queue: SVC, failure: { retryDelays: [300] } })
  onShipment(payload: { n: number }, ctx: WarrenContext) {
    handle(log, 'Logistics.onShipment', payload, ctx);
  }

  @Subscribe(DIRECT, ['invoice.created', 'invoice.paid', 'invoice.void'], {
    type: 'direct',
    queue: SVC,
    failure: { retryDelays: [200] },
  })
  onInvoice(payload: { n: number }, ctx: WarrenContext) {
    handle(log, 'Logistics.onInvoice', payload, ctx);
  }

  @Consume(DLQ, { failure: 'drop' })
  onDead(_: unknown, ctx: WarrenContext) {
    deadLetters.push({
      key: ctx.headers[FAILURE_HEADERS.routingKey],
      reason: ctx.headers[FAILURE_HEADERS.reason],
      error: ctx.headers[FAILURE_HEADERS.errorName],
    });
  }
}

const KEYS: [exchange: string, key: string, method: string][] = [
  [TOPIC, 'order.placed', 'Orders.onPlaced'],
  [TOPIC, 'order.cancelled.user', 'Orders.onCancelled'],
  [TOPIC, 'order.cancelled.fraud', 'Orders.onCancelled'],
  [TOPIC, 'shipment.sent', 'Logistics.onShipment'],
  [TOPIC, 'shipment.delivered.eu', 'Logistics.onShipment'],
  [DIRECT, 'invoice.created', 'Logistics.onInvoice'],
  [DIRECT, 'invoice.paid', 'Logistics.onInvoice'],
  [DIRECT, 'invoice.void', 'Logistics.onInvoice'],
];

const brokers: [string, () => string][] = [
  ['RabbitMQ', brokerUrl],
  ['the in-memory broker', () => `memory://${unique('svc')}`],
];

afterAll(async () => {
  await deleteTopology({
    queues: [SVC, DLQ, retryQueueName(200), retryQueueName(300)],
    exchanges: [TOPIC, DIRECT, retryQueueName(200), retryQueueName(300)],
  });
});

describe.each(brokers)('a service queue on %s', (_, url) => {
  let app: INestApplicationContext | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('hands each of 2 000 messages over 8 routing keys on two exchanges to exactly its method, also after a retry', async () => {
    log.length = 0;
    deadLetters.length = 0;
    app = await bootApp(
      { providers: [Orders, Logistics] },
      {
        url: url(),
        // A binding an older deploy left on the broker: no handler of the queue is bound for it.
        topology: {
          exchanges: [{ name: TOPIC, type: 'topic' }],
          queues: [{ name: SVC }],
          bindings: [{ exchange: TOPIC, queue: SVC, routingKey: 'legacy.#' }],
        },
      },
    );
    const publisher = app.get(Publisher);
    const expected = new Map<number, string>();
    for (let batch = 0; batch < 10; batch++) {
      const sends: Promise<void>[] = [];
      for (let i = 0; i < 200; i++) {
        const n = batch * 200 + i;
        const [exchange, key, method] = KEYS[n % KEYS.length];
        expected.set(n, method);
        sends.push(publisher.publish(exchange, key, { n }));
      }
      await Promise.all(sends);
    }
    await publisher.publish(TOPIC, 'legacy.audit', { n: -1 });
    await publisher.publish(TOPIC, 'legacy.audit', { n: -2 });

    await waitUntil('every message handled', () => log.filter((h) => h.ok).length >= 2000, 60_000);
    await waitUntil('both unmatched messages dead-lettered', () => deadLetters.length >= 2);

    // Exactly once, by exactly its method, on each attempt; the retried ones by the same method.
    const handled = log.filter((h) => h.ok);
    expect(handled).toHaveLength(2000);
    expect(new Set(handled.map((h) => h.n)).size).toBe(2000);
    expect(log.filter((h) => expected.get(h.n) !== h.method)).toEqual([]);
    const retried = log.filter((h) => !h.ok).map((h) => h.n);
    expect(retried).toHaveLength(250);
    expect(
      handled
        .filter((h) => h.attempt === 2)
        .map((h) => h.n)
        .sort(),
    ).toEqual(retried.sort());
    // Each method's own retry schedule.
    expect(logged('warn').filter((l) => l.startsWith('Logistics.onShipment:') && !l.endsWith('300 ms'))).toEqual([]);
    expect(logged('warn').filter((l) => l.startsWith('Orders.onPlaced:') && !l.endsWith('200 ms'))).toEqual([]);

    // The unmatched ones: dead-lettered as no-handler, logged once for the route.
    expect(deadLetters).toEqual([
      { key: 'legacy.audit', reason: 'no-handler', error: 'NoHandlerError' },
      { key: 'legacy.audit', reason: 'no-handler', error: 'NoHandlerError' },
    ]);
    expect(logged('error').filter((l) => l.includes('matches no handler'))).toEqual([
      `service queue "${SVC}": message from exchange "${TOPIC}" with routing key "legacy.audit" matches no handler ` +
        `of the queue; dead-lettered (reason no-handler). Later messages of this route are handled the same way ` +
        `without a log line; remove the binding from the broker, or add a handler for it`,
    ]);

    // One consumer on the queue, whose bindings are the union of the methods' (and the legacy one).
    const svc = await app
      .get(WarrenConnection)
      .withChannel('consume', async (ch) => (await ch.checkQueue(SVC)).consumerCount);
    expect(svc).toBe(1);
    expect(
      app
        .get(ConsumerRegistry)
        .list()
        .filter((c) => c.queue === SVC)
        .map((c) => c.label),
    ).toEqual([`service queue "${SVC}"`]);
  });

  it('hands a dead letter redriven to the queue by name to the method of its original route', async () => {
    const queue = unique('e2e.svc-redrive');
    const dlq = `${queue}.dlq`;
    const seen: [string, string, string][] = [];
    let failing = true;
    @Injectable()
    class Redriven {
      @Subscribe(TOPIC, 'order.placed', { queue, failure: 'dead-letter' })
      onPlaced(_: unknown, ctx: WarrenContext) {
        seen.push(['onPlaced', ctx.exchange, ctx.routingKey]);
        if (failing) throw new Error('the store is down');
      }

      @Subscribe(DIRECT, 'order.placed', { type: 'direct', queue, failure: 'dead-letter' })
      onDirect(_: unknown, ctx: WarrenContext) {
        seen.push(['onDirect', ctx.exchange, ctx.routingKey]);
      }

      // What a redrive would reach if the dispatcher went by the delivery's own route (the default
      // exchange, the queue's name).
      @Subscribe(TOPIC, '#', { queue, failure: 'dead-letter', fallback: true })
      onOther(_: unknown, ctx: WarrenContext) {
        seen.push(['onOther', ctx.exchange, ctx.routingKey]);
      }
    }
    app = await bootApp({ providers: [Redriven] }, { url: url() });
    await app.get(Publisher).publish(TOPIC, 'order.placed', { n: 1 });
    const connection = app.get(WarrenConnection);
    const depth = () => connection.withChannel('consume', async (ch) => (await ch.checkQueue(dlq)).messageCount);
    await waitUntil('the dead letter', async () => (await depth()) === 1);
    expect(seen).toEqual([['onPlaced', TOPIC, 'order.placed']]);

    // The redrive: the dead letter sent back to its queue by name, headers kept (as a shovel or
    // the management UI's "move messages" does).
    failing = false;
    await connection.withChannel('consume', async (ch) => {
      const dead = await ch.get(dlq, { noAck: true });
      if (!dead) throw new Error('no dead letter to redrive');
      ch.sendToQueue(queue, dead.content, {
        contentType: dead.properties.contentType,
        headers: dead.properties.headers,
      });
    });
    await waitUntil('the redriven message', () => seen.length === 2);
    expect(seen[1]).toEqual(['onPlaced', TOPIC, 'order.placed']);
    await app.close();
    app = undefined;
    await deleteTopology({ queues: [queue, dlq] });
  });

  it('refuses overlapping bindings at boot naming both methods and a key, unless one is the fallback', async () => {
    const queue = unique('e2e.svc-overlap');
    @Injectable()
    class Overlapping {
      @Subscribe(TOPIC, 'order.*', { queue })
      onAny() {}

      @Subscribe(TOPIC, ['audit.#', 'order.placed'], { queue })
      onPlaced() {}
    }
    await expect(bootApp({ providers: [Overlapping] }, { url: url() })).rejects.toThrow(
      new TopologyError(
        `Service queue "${queue}": Overlapping.onAny (binding key "order.*") and Overlapping.onPlaced ` +
          `(binding key "order.placed") both match routing key "order.placed" on exchange "${TOPIC}"; a message ` +
          `must have exactly one handler: narrow the bindings, or declare one of them { fallback: true }`,
      ),
    );

    const seen: [string, string][] = [];
    @Injectable()
    class WithFallback {
      @Subscribe(TOPIC, 'order.placed', { queue, failure: 'drop' })
      onPlaced(_: unknown, ctx: WarrenContext) {
        seen.push(['onPlaced', ctx.routingKey]);
      }

      @Subscribe(TOPIC, 'order.#', { queue, failure: 'drop', fallback: true })
      onOther(_: unknown, ctx: WarrenContext) {
        seen.push(['onOther', ctx.routingKey]);
      }
    }
    app = await bootApp({ providers: [WithFallback] }, { url: url() });
    const publisher = app.get(Publisher);
    for (const key of ['order.placed', 'order.cancelled', 'order', 'order.placed']) {
      await publisher.publish(TOPIC, key, {});
    }
    await waitUntil('four messages', () => seen.length === 4);
    expect(seen.sort()).toEqual(
      [
        ['onPlaced', 'order.placed'],
        ['onOther', 'order.cancelled'],
        ['onOther', 'order'],
        ['onPlaced', 'order.placed'],
      ].sort(),
    );
    await app.close();
    app = undefined;
    await deleteTopology({ queues: [queue] });
  });

  it('dispatches headers bindings by header match, and refuses settings the methods disagree on', async () => {
    const queue = unique('e2e.svc-headers');
    const HEADERS = unique('e2e.svc-headers-x');
    const seen: string[] = [];
    @Injectable()
    class Reports {
      @Subscribe(HEADERS, undefined, { type: 'headers', headers: { format: 'pdf' }, queue, failure: 'drop' })
      onPdf() {
        seen.push('pdf');
      }

      @Subscribe(HEADERS, undefined, { type: 'headers', headers: { format: 'zip' }, queue, failure: 'drop' })
      onZip() {
        seen.push('zip');
      }
    }
    app = await bootApp({ providers: [Reports] }, { url: url() });
    const publisher = app.get(Publisher);
    await publisher.publish(HEADERS, '', {}, { headers: { format: 'zip' } });
    await publisher.publish(HEADERS, '', {}, { headers: { format: 'pdf' } });
    await publisher.publish(HEADERS, '', {}, { headers: { format: 'zip' } });
    await waitUntil('three reports', () => seen.length === 3);
    expect(seen.sort()).toEqual(['pdf', 'zip', 'zip']);
    await app.close();
    app = undefined;
    await deleteTopology({ queues: [queue], exchanges: [HEADERS] });

    const other = unique('e2e.svc-disagree');
    @Injectable()
    class Disagreeing {
      @Subscribe(TOPIC, 'a', { queue: other, prefetch: 5 })
      onA() {}

      @Subscribe(TOPIC, 'b', { queue: other, failure: 'dead-letter' })
      onB() {}
    }
    await expect(bootApp({ providers: [Disagreeing] }, { url: url(), prefetch: 10 })).rejects.toThrow(
      new TopologyError(
        `Service queue "${other}": Disagreeing.onA and Disagreeing.onB consume it with different settings: ` +
          `prefetch 5 vs 10, failure mode "retry" vs "dead-letter". The handlers of one queue share its ` +
          `declaration, prefetch, concurrency, failure mode and dead-letter queue`,
      ),
    );
  });
});

import { Injectable, type INestApplicationContext } from '@nestjs/common';
import amqplib, { type ChannelModel } from 'amqplib';
import {
  ATTEMPT_HEADER,
  Consume,
  defineEvent,
  FAILURE_HEADERS,
  Publisher,
  PublishError,
  retryQueueName,
  type StandardSchemaV1,
  Subscribe,
  type WarrenContext,
  WarrenConnection,
  WarrenConnectionError,
  WarrenModule,
} from 'nestjs-warren';
import { Test } from '@nestjs/testing';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, nextMessage, queueDepth, unique, waitUntil } from './support/broker.js';
import { capturedLogs, logged } from './support/logs.js';

const X = unique('e2e.failure-x');
const RETRIED = unique('e2e.retried');
const POISON = unique('e2e.poison');
const VALIDATED = unique('e2e.validated');
const DROPPED = unique('e2e.dropped');
const REQUEUED = unique('e2e.requeued');
const MANUAL = unique('e2e.manual');
const QUORUM = unique('e2e.quorum');
const QUORUM_OWN_DLQ = unique('e2e.quorum-own-dlq');
const OWN_DLQ = unique('e2e.own-dlq');
const QUORUM_TO_EXCHANGE = unique('e2e.quorum-to-exchange');
const DEAD_X = unique('e2e.dead-x');
const DEAD_X_QUEUE = unique('e2e.dead-x-queue');

interface Order {
  id: string;
  qty: number;
}
/** A Standard Schema written by hand: any validator implementing the interface (zod, valibot) works the same. */
const OrderSchema: StandardSchemaV1<Order> = {
  '~standard': {
    version: 1,
    vendor: 'e2e',
    validate: (value) => {
      const v = value as Partial<Order> | null;
      if (v && typeof v.id === 'string' && typeof v.qty === 'number' && v.qty > 0) return { value: v as Order };
      return { issues: [{ message: 'must be a positive number', path: ['qty'] }] };
    },
  },
};
const OrderPlaced = defineEvent<Order>(X, 'order.validated', { schema: OrderSchema });

@Injectable()
class Handlers {
  attempts: { attempt: unknown; at: number; redelivered: boolean }[] = [];
  poisonCalls = 0;
  validated: Order[] = [];
  dropped = 0;
  requeued: boolean[] = [];
  manual: string[] = [];
  quorumDeliveries = 0;
  ownDlqDeliveries = 0;
  toExchangeDeliveries = 0;

  @Subscribe(X, 'order.retried', { queue: RETRIED, failure: { retryDelays: [300, 600] } })
  alwaysFails(_: unknown, ctx: WarrenContext) {
    this.attempts.push({ attempt: ctx.headers[ATTEMPT_HEADER], at: Date.now(), redelivered: ctx.redelivered });
    throw new TypeError('inventory service unreachable');
  }

  @Consume(POISON)
  onPoison() {
    this.poisonCalls++;
  }

  @Subscribe(OrderPlaced, { queue: VALIDATED })
  onValidated(order: Order) {
    this.validated.push(order);
  }

  @Consume(DROPPED, { failure: 'drop' })
  onDropped() {
    this.dropped++;
    throw new Error('not today');
  }

  @Consume(REQUEUED, { failure: { mode: 'requeue', requeueDelayMs: 50 } })
  onRequeued(_: unknown, ctx: WarrenContext) {
    this.requeued.push(ctx.redelivered);
    if (this.requeued.length === 1) throw new Error('first time fails');
  }

  @Consume(MANUAL, { failure: 'manual' })
  onManual(payload: { n: number }, ctx: WarrenContext) {
    this.manual.push(`got ${payload.n}`);
    if (payload.n === 1) ctx.ack();
    else ctx.nack({ requeue: false });
  }

  @Consume(QUORUM, { queueType: 'quorum', deliveryLimit: 2, failure: { mode: 'requeue', requeueDelayMs: 20 } })
  onQuorum() {
    this.quorumDeliveries++;
    throw new Error('quorum handler fails');
  }

  @Consume(QUORUM_OWN_DLQ, {
    queueType: 'quorum',
    deliveryLimit: 2,
    failure: { mode: 'requeue', requeueDelayMs: 50, deadLetterQueue: OWN_DLQ },
  })
  onQuorumOwnDlq() {
    this.ownDlqDeliveries++;
    throw new Error('quorum handler with its own dead-letter queue fails');
  }

  @Consume(QUORUM_TO_EXCHANGE, {
    queueType: 'quorum',
    deliveryLimit: 2,
    failure: { mode: 'requeue', requeueDelayMs: 50, deadLetterExchange: DEAD_X },
  })
  onQuorumToExchange() {
    this.toExchangeDeliveries++;
    throw new Error('quorum handler with a dead-letter exchange fails');
  }
}

let app: INestApplicationContext;
let raw: ChannelModel;

beforeAll(async () => {
  app = await bootApp(
    { providers: [Handlers] },
    {
      // `deadLetterExchange` names an exchange of the app's own: Warren binds nothing to it.
      topology: {
        exchanges: [{ name: DEAD_X, type: 'direct' }],
        queues: [{ name: DEAD_X_QUEUE }],
        bindings: [{ exchange: DEAD_X, queue: DEAD_X_QUEUE, routingKey: QUORUM_TO_EXCHANGE }],
      },
    },
  );
  raw = await amqplib.connect(brokerUrl());
});

afterAll(async () => {
  await app?.close();
  await raw?.close();
  const queues = [RETRIED, POISON, VALIDATED, DROPPED, REQUEUED, MANUAL, QUORUM, QUORUM_OWN_DLQ, QUORUM_TO_EXCHANGE];
  const own = [OWN_DLQ, DEAD_X_QUEUE];
  // The retry queues are shared by every app on the broker: this suite's own delays only.
  const retry = [retryQueueName(300), retryQueueName(600)];
  await deleteTopology({
    queues: [...queues.flatMap((q) => [q, `${q}.dlq`]), ...own, ...retry],
    exchanges: [X, DEAD_X, ...retry],
  });
});

describe('handler failures', () => {
  it('retries on the schedule with the attempt in a header, then dead-letters with the reason', async () => {
    const handlers = app.get(Handlers);
    await app.get(Publisher).publish(X, 'order.retried', { id: 'r-1' });
    const dead = await nextMessage(raw, `${RETRIED}.dlq`);

    expect(handlers.attempts.map((a) => a.attempt)).toEqual([undefined, 2, 3]);
    const gaps = [handlers.attempts[1].at - handlers.attempts[0].at, handlers.attempts[2].at - handlers.attempts[1].at];
    // Lower bounds are the schedule; the upper bound only says "not the next delay, not stuck".
    expect(gaps[0]).toBeGreaterThanOrEqual(290);
    expect(gaps[1]).toBeGreaterThanOrEqual(590);
    expect(gaps[0]).toBeLessThan(3000);
    expect(gaps[1]).toBeLessThan(3000);
    expect(JSON.parse(dead.content.toString())).toEqual({ id: 'r-1' });
    expect(dead.properties.headers).toMatchObject({
      [FAILURE_HEADERS.reason]: 'attempts-exhausted',
      [FAILURE_HEADERS.errorName]: 'TypeError',
      [FAILURE_HEADERS.errorMessage]: 'inventory service unreachable',
      [FAILURE_HEADERS.attempts]: 3,
      [FAILURE_HEADERS.queue]: RETRIED,
      [FAILURE_HEADERS.exchange]: X,
      [FAILURE_HEADERS.routingKey]: 'order.retried',
    });
    expect(Date.parse(String(dead.properties.headers?.[FAILURE_HEADERS.failedAt]))).not.toBeNaN();
    expect(await queueDepth(raw, RETRIED)).toBe(0);
    // Retries wait in the shared per-delay queues, not in queues of their own.
    expect(await queueDepth(raw, retryQueueName(300))).toBe(0);
    // Each failure is logged naming the handler and the message by its original route, though the
    // retried copies come back from the retry queue through the default exchange.
    const where = `Handlers.alwaysFails: message from exchange "${X}" with routing key "order.retried"`;
    const reason = 'TypeError: inventory service unreachable';
    expect(logged('warn').filter((l) => l.startsWith('Handlers.alwaysFails:'))).toEqual([
      `${where} failed (attempt 1): ${reason}; retrying in 300 ms`,
      `${where} failed (attempt 2): ${reason}; retrying in 600 ms`,
    ]);
    // One line per failed attempt, all of them Warren's: the last one, which dead-letters the
    // message, carries the stack, once; Nest's own ExceptionsHandler logs nothing.
    const last = logged('error').filter((l) => l.startsWith('Handlers.alwaysFails:'));
    expect(last).toHaveLength(1);
    expect(last[0]).toMatch(
      new RegExp(
        `^${escape(`${where} failed 3 times (${reason}); dead-lettered`)}\nTypeError: inventory service unreachable\n +at `,
      ),
    );
    expect(capturedLogs().filter((l) => l.source === 'ExceptionsHandler')).toEqual([]);
    expect(capturedLogs().filter((l) => l.text.includes('inventory service unreachable'))).toHaveLength(3);
  });

  it('sends an undecodable body straight to the dead-letter queue, without calling the handler', async () => {
    const ch = await raw.createConfirmChannel();
    ch.sendToQueue(POISON, Buffer.from('{"id": '), { contentType: 'application/json' });
    await ch.waitForConfirms();
    await ch.close();
    const dead = await nextMessage(raw, `${POISON}.dlq`);
    expect(dead.content.toString()).toBe('{"id": ');
    expect(dead.properties.headers).toMatchObject({
      [FAILURE_HEADERS.reason]: 'poison',
      [FAILURE_HEADERS.errorName]: 'MessageDecodeError',
      [FAILURE_HEADERS.attempts]: 1,
    });
    expect(app.get(Handlers).poisonCalls).toBe(0);
    // The consumer keeps running.
    await app.get(Publisher).sendToQueue(POISON, { fine: true });
    await waitUntil('the next message', () => app.get(Handlers).poisonCalls === 1);
  });

  it('sends a payload that fails the contract schema straight to the dead-letter queue', async () => {
    const ch = await raw.createConfirmChannel();
    ch.publish(X, 'order.validated', Buffer.from('{"id":"v-1","qty":-3}'), { contentType: 'application/json' });
    await ch.waitForConfirms();
    await ch.close();
    const dead = await nextMessage(raw, `${VALIDATED}.dlq`);
    expect(dead.properties.headers).toMatchObject({
      [FAILURE_HEADERS.reason]: 'poison',
      [FAILURE_HEADERS.errorName]: 'PayloadValidationError',
      [FAILURE_HEADERS.errorMessage]: 'Payload failed validation: qty: must be a positive number',
    });
    expect(app.get(Handlers).validated).toEqual([]);
    await app.get(Publisher).publish(OrderPlaced, { id: 'v-2', qty: 2 });
    await waitUntil('the valid order', () => app.get(Handlers).validated.length === 1);
    expect(app.get(Handlers).validated).toEqual([{ id: 'v-2', qty: 2 }]);
  });

  it('checks the contract schema at publish time too', async () => {
    await expect(app.get(Publisher).publish(OrderPlaced, { id: 'v-3', qty: 0 })).rejects.toThrow(
      new PublishError(
        `Cannot publish to exchange "${X}" with routing key "order.validated": payload fails the contract's schema: qty: must be a positive number`,
      ),
    );
  });

  it('drops (acks) in drop mode: no retry, no dead-letter queue', async () => {
    await app.get(Publisher).sendToQueue(DROPPED, { n: 1 });
    await waitUntil('the handler', () => app.get(Handlers).dropped === 1);
    await waitUntil('the queue to be empty', async () => (await queueDepth(raw, DROPPED)) === 0);
    const ch = await raw.createChannel();
    ch.on('error', () => undefined);
    await expect(ch.checkQueue(`${DROPPED}.dlq`)).rejects.toThrow(/NOT_FOUND/);
    expect(app.get(Handlers).dropped).toBe(1);
    // Dropped, but not silently.
    const line = `Handlers.onDropped: message from exchange "" with routing key "${DROPPED}" failed and was dropped (acked): Error: not today`;
    expect(logged('error').map((l) => l.split('\n')[0])).toContain(line);
  });

  it('requeues in requeue mode: the message comes back redelivered', async () => {
    await app.get(Publisher).sendToQueue(REQUEUED, { n: 1 });
    await waitUntil('the second delivery', () => app.get(Handlers).requeued.length === 2);
    expect(app.get(Handlers).requeued).toEqual([false, true]);
  });

  it('leaves acking to the handler in manual mode', async () => {
    await app.get(Publisher).sendToQueue(MANUAL, { n: 1 });
    await app.get(Publisher).sendToQueue(MANUAL, { n: 2 });
    await waitUntil('both messages', () => app.get(Handlers).manual.length === 2);
    await waitUntil('both settled', async () => (await queueDepth(raw, MANUAL)) === 0);
    expect(app.get(Handlers).manual).toEqual(['got 1', 'got 2']);
  });

  it("honours a quorum queue's delivery limit: the broker dead-letters after it", async () => {
    await app.get(Publisher).sendToQueue(QUORUM, { n: 1 });
    const dead = await nextMessage(raw, `${QUORUM}.dlq`);
    expect(JSON.parse(dead.content.toString())).toEqual({ n: 1 });
    const death = (dead.properties.headers?.['x-death'] as { reason: string }[] | undefined)?.[0];
    expect(death?.reason).toBe('delivery_limit');
    // The first delivery plus `deliveryLimit` redeliveries.
    expect(app.get(Handlers).quorumDeliveries).toBe(3);
  });

  it("dead-letters past a quorum queue's delivery limit into the handler's own deadLetterQueue", async () => {
    await app.get(Publisher).sendToQueue(QUORUM_OWN_DLQ, { n: 2 });
    const dead = await nextMessage(raw, OWN_DLQ);
    expect(JSON.parse(dead.content.toString())).toEqual({ n: 2 });
    const death = (dead.properties.headers?.['x-death'] as { reason: string }[] | undefined)?.[0];
    expect(death?.reason).toBe('delivery_limit');
    expect(app.get(Handlers).ownDlqDeliveries).toBe(3);
    // The queue named after the default is not where it went: nothing declares it.
    const ch = await raw.createChannel();
    ch.on('error', () => undefined);
    await expect(ch.checkQueue(`${QUORUM_OWN_DLQ}.dlq`)).rejects.toThrow(/NOT_FOUND/);
  });

  it("dead-letters past a quorum queue's delivery limit to the deadLetterExchange, keyed by the queue's name", async () => {
    await app.get(Publisher).sendToQueue(QUORUM_TO_EXCHANGE, { n: 3 });
    const dead = await nextMessage(raw, DEAD_X_QUEUE);
    expect(JSON.parse(dead.content.toString())).toEqual({ n: 3 });
    const death = (dead.properties.headers?.['x-death'] as { reason: string }[] | undefined)?.[0];
    expect(death?.reason).toBe('delivery_limit');
    expect(app.get(Handlers).toExchangeDeliveries).toBe(3);
  });
});

describe('bad input at publish time: a clear error, nothing sent', () => {
  const Q = unique('e2e.bad-input');
  let small: INestApplicationContext;
  beforeAll(async () => {
    small = await bootApp({}, { maxMessageBytes: 1024, topology: { queues: [{ name: Q, durable: false }] } });
  });
  afterAll(async () => {
    await small?.close();
    await deleteTopology({ queues: [Q] });
  });

  it.each([
    [
      'a routing key over 255 bytes',
      () => small.get(Publisher).publish(X, 'k'.repeat(300), {}),
      `Cannot publish to exchange "${X}": routing key is 300 bytes, over RabbitMQ's limit of 255`,
    ],
    [
      'a BigInt',
      () => small.get(Publisher).sendToQueue(Q, { n: 10n }),
      `Cannot publish to queue "${Q}": Payload cannot be serialised to JSON: Do not know how to serialize a BigInt`,
    ],
    [
      'a cycle',
      () => {
        const cycle: Record<string, unknown> = {};
        cycle.self = cycle;
        return small.get(Publisher).sendToQueue(Q, cycle);
      },
      /Cannot publish to queue ".*": Payload cannot be serialised to JSON: Converting circular structure to JSON/,
    ],
    [
      'an oversize message',
      () => small.get(Publisher).sendToQueue(Q, 'x'.repeat(2000)),
      `Cannot publish to queue "${Q}": message is 2002 bytes, over the limit of 1024 (maxMessageBytes)`,
    ],
    [
      'a function in the headers',
      () => small.get(Publisher).sendToQueue(Q, {}, { headers: { trace: { fn: () => 1 } } }),
      `Cannot publish to queue "${Q}": headers.trace.fn is a function, which AMQP headers cannot carry`,
    ],
    [
      'NaN in the headers',
      () => small.get(Publisher).sendToQueue(Q, {}, { headers: { n: [1, NaN] } }),
      `Cannot publish to queue "${Q}": headers.n[1] is NaN, which AMQP cannot encode`,
    ],
  ] as [string, () => Promise<void>, string | RegExp][])('refuses %s', async (_name, publish, message) => {
    const error = await publish().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishError);
    expect((error as Error).message).toMatch(
      typeof message === 'string' ? new RegExp(`^${escape(message)}$`) : message,
    );
    expect(await queueDepth(raw, Q)).toBe(0);
  });
});

describe('a publish the broker refuses', () => {
  const Q = unique('e2e.refused-bystanders');
  let app: INestApplicationContext;
  beforeAll(async () => {
    app = await bootApp({}, { reconnectDelayMs: 100, topology: { queues: [{ name: Q, durable: false }] } });
  });
  afterAll(async () => {
    await app?.close();
    await deleteTopology({ queues: [Q] });
  });

  it('fails that publish naming the exchange, and the messages around it still arrive, on the same connection', async () => {
    const publisher = app.get(Publisher);
    const generationBefore = app.get(WarrenConnection).connectionGeneration('publish');
    const missing = unique('e2e.no-such-exchange');
    const around = Array.from({ length: 50 }, (_, i) => i);
    const sent = around.map((i) => publisher.sendToQueue(Q, { i }));
    // In the middle of the stream: the broker closes the channel at this one, with the rest unconfirmed.
    const refused = publisher.publish(missing, 'any', {}).catch((e: unknown) => e);
    sent.push(...around.map((i) => publisher.sendToQueue(Q, { i: i + 50 })));
    const error = await refused;
    expect(error).toBeInstanceOf(PublishError);
    expect((error as Error).message).toBe(
      `Cannot publish to exchange "${missing}": the broker refused it: Channel closed by server: 404 (NOT-FOUND) ` +
        `with message "NOT_FOUND - no exchange '${missing}' in vhost '/'". Declare the exchange: ` +
        `WarrenModule.forRoot({ topology: { contracts: [YourEvent] } }) for a contract, ` +
        `or { topology: { exchanges: [{ name: '${missing}', type: 'topic' }] } }, or subscribe a handler to it`,
    );
    // Every other publish is confirmed (sent again on a fresh channel if its confirm was lost)...
    await Promise.all(sent);
    const ch = await raw.createChannel();
    const seen = new Set<number>();
    for (let m = await ch.get(Q, { noAck: true }); m; m = await ch.get(Q, { noAck: true })) {
      seen.add((JSON.parse(m.content.toString()) as { i: number }).i);
    }
    await ch.close();
    expect(seen.size).toBe(100);
    // ...and the next one too, on the same connection: only the channel was closed and reopened.
    await publisher.sendToQueue(Q, { i: 100 });
    expect(await queueDepth(raw, Q)).toBe(1);
    expect(app.get(WarrenConnection).connectionGeneration('publish')).toBe(generationBefore);
  });
});

describe('boot errors', () => {
  it('fails at once on an unknown vhost, naming it', async () => {
    const url = new URL(brokerUrl());
    url.pathname = '/no-such-vhost';
    const error = await Test.createTestingModule({
      imports: [WarrenModule.forRoot({ url: url.toString(), connectTimeoutMs: 20_000 })],
    })
      .compile()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WarrenConnectionError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^Cannot connect to RabbitMQ at amqp://127\\.0\\.0\\.1:${url.port}/no-such-vhost at boot: the broker refused to open the virtual host`,
      ),
    );
  }, 10_000);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

import { Injectable, type INestApplicationContext } from '@nestjs/common';
import amqplib from 'amqplib';
import { Consume, Publisher, Subscribe, type WarrenContext } from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { bindingsFrom, brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';
import { closeConnection } from './support/connections.js';

const QUEUE = unique('e2e.consumer');
const EXCHANGE = unique('e2e.consumer-x');
const HOLD_QUEUE = unique('e2e.consumer-hold');

@Injectable()
class Inbox {
  received: { payload: unknown; contentType?: string; redelivered: boolean }[] = [];
  failures = 0;

  // Dropped rather than retried: this suite is about consuming; test/failure.e2e-spec.ts has the policies.
  @Consume(QUEUE, { prefetch: 5, failure: 'drop' })
  async onMessage(payload: unknown, context: WarrenContext) {
    await new Promise((r) => setTimeout(r, 1));
    if (payload === 'fail') {
      this.failures++;
      throw new Error('handler refuses "fail"');
    }
    this.received.push({ payload, contentType: context.properties.contentType, redelivered: context.redelivered });
  }
}

@Injectable()
class Listener {
  keys: string[] = [];
  @Subscribe(EXCHANGE, 'news.#')
  on(_: unknown, context: WarrenContext) {
    this.keys.push(context.routingKey);
  }
}

/** Holds its first "hold" delivery until released; handles everything else at once. */
@Injectable()
class Holding {
  handled: { payload: unknown; redelivered: boolean }[] = [];
  held = false;
  release?: () => void;

  @Consume(HOLD_QUEUE, { prefetch: 20, failure: 'drop' })
  async onMessage(payload: unknown, context: WarrenContext) {
    if (payload === 'hold' && !context.redelivered) {
      this.held = true;
      await new Promise<void>((resolve) => (this.release = resolve));
    }
    this.handled.push({ payload, redelivered: context.redelivered });
  }
}

let app: INestApplicationContext;
const connectionName = unique('consumer-suite');

beforeAll(async () => {
  app = await bootApp({ providers: [Inbox, Listener, Holding] }, { connectionName, reconnectDelayMs: 200 });
});

afterAll(async () => {
  await app?.close();
  await deleteTopology({ queues: [QUEUE, HOLD_QUEUE], exchanges: [EXCHANGE] });
});

async function rawSend(body: string, properties: amqplib.Options.Publish = {}) {
  const connection = await amqplib.connect(brokerUrl());
  const channel = await connection.createConfirmChannel();
  channel.sendToQueue(QUEUE, Buffer.from(body), properties);
  await channel.waitForConfirms();
  await connection.close();
}

async function queueDepth(): Promise<number> {
  const connection = await amqplib.connect(brokerUrl());
  try {
    return (await (await connection.createChannel()).checkQueue(QUEUE)).messageCount;
  } finally {
    await connection.close();
  }
}

describe('consuming', () => {
  it('hands plain bytes without a content type to the handler as text', async () => {
    const inbox = app.get(Inbox);
    await rawSend('Hello World!');
    await waitUntil('the plain message', () => inbox.received.some((r) => r.payload === 'Hello World!'));
    expect(inbox.received.find((r) => r.payload === 'Hello World!')?.contentType).toBeUndefined();
  });

  it('rejects a malformed JSON body without requeueing it, and keeps consuming', async () => {
    const inbox = app.get(Inbox);
    await rawSend('{"broken": ', { contentType: 'application/json' });
    await app.get(Publisher).sendToQueue(QUEUE, { after: 'broken' });
    await waitUntil('the message after the malformed one', () =>
      inbox.received.some((r) => JSON.stringify(r.payload) === '{"after":"broken"}'),
    );
    expect(inbox.received.some((r) => r.redelivered)).toBe(false);
    expect(await queueDepth()).toBe(0);
  });

  it('drops the message of a throwing handler (failure mode drop), and keeps consuming', async () => {
    const inbox = app.get(Inbox);
    const publisher = app.get(Publisher);
    await publisher.sendToQueue(QUEUE, 'fail', { contentType: 'text/plain' });
    await publisher.sendToQueue(QUEUE, { n: 1 });
    await waitUntil('the message after the failing one', () =>
      inbox.received.some((r) => JSON.stringify(r.payload) === '{"n":1}'),
    );
    expect(inbox.failures).toBe(1);
    expect(await queueDepth()).toBe(0);
  });

  it('re-declares a temporary queue and its bindings after the connection is lost, and consumes again', async () => {
    const listener = app.get(Listener);
    const [[before]] = await bindingsFrom(EXCHANGE);
    await closeConnection(`${connectionName}:consume`);
    await waitUntil(
      'the binding to come back on a new server-named queue',
      async () => {
        const bindings = await bindingsFrom(EXCHANGE);
        return bindings.length === 1 && bindings[0][0] !== before && bindings[0][1] === 'news.#';
      },
      20_000,
    );
    // The consumer may start a moment after the binding: publish until a message gets through.
    const publisher = app.get(Publisher);
    await waitUntil(
      'a message through the new queue',
      async () => {
        await publisher.publish(EXCHANGE, 'news.after', {});
        await new Promise((r) => setTimeout(r, 50));
        return listener.keys.includes('news.after');
      },
      20_000,
    );
    // And the work queue's consumer came back too.
    await publisher.sendToQueue(QUEUE, { n: 'after-reconnect' });
    await waitUntil('the work queue after the reconnect', () =>
      app.get(Inbox).received.some((r) => JSON.stringify(r.payload) === '{"n":"after-reconnect"}'),
    );
  }, 45_000);

  it('acks the deliveries handled after one still in its handler without acking that one: it comes back when the connection is lost', async () => {
    const holding = app.get(Holding);
    const publisher = app.get(Publisher);
    await publisher.sendToQueue(HOLD_QUEUE, 'hold', { contentType: 'text/plain' });
    await waitUntil('the first delivery held in its handler', () => holding.held);
    // Published together, so that they arrive (and are handled) together: one multiple ack's worth.
    await Promise.all(Array.from({ length: 10 }, (_, i) => publisher.sendToQueue(HOLD_QUEUE, { n: i + 1 })));
    await waitUntil('the ten deliveries after it handled', () => holding.handled.length === 10);
    // Their acks have left (each in the tick it was handled in); the held one must not be among them.
    await new Promise((r) => setTimeout(r, 200));
    await closeConnection(`${connectionName}:consume`);
    await waitUntil(
      'the held delivery redelivered after the connection loss',
      () => holding.handled.some((h) => h.payload === 'hold' && h.redelivered),
      20_000,
    );
    holding.release?.();
    await new Promise((r) => setTimeout(r, 200));
    // Acked, so none of the ten came back.
    expect(holding.handled.filter((h) => h.payload !== 'hold').map((h) => (h.payload as { n: number }).n)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
  }, 45_000);
});

import { Injectable, type INestApplicationContext } from '@nestjs/common';
import amqplib, { type ChannelModel } from 'amqplib';
import { FAILURE_HEADERS, Publisher, retryQueueName, Subscribe, type WarrenContext } from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, nextMessage, unique, waitUntil } from './support/broker.js';
import { logged } from './support/logs.js';

const X = unique('e2e.route-x');
const Q = unique('e2e.route-q');
const DELAY = 250;

interface Seen {
  exchange: string;
  routingKey: string;
  attempt: number;
  deliveryExchange: string;
  deliveryRoutingKey: string;
}

/** Branches on the routing key, as a handler bound to `order.*` does: every attempt must take the same branch. */
@Injectable()
class Orders {
  seen: Seen[] = [];
  failing = true;

  @Subscribe(X, 'order.*', { queue: Q, failure: { retryDelays: [DELAY] } })
  on(_: unknown, ctx: WarrenContext) {
    const { exchange, routingKey, attempt, deliveryExchange, deliveryRoutingKey } = ctx;
    this.seen.push({ exchange, routingKey, attempt, deliveryExchange, deliveryRoutingKey });
    if (this.failing) throw new Error(`cannot handle ${routingKey}`);
  }
}

let app: INestApplicationContext;
let raw: ChannelModel;

beforeAll(async () => {
  app = await bootApp({ providers: [Orders] });
  raw = await amqplib.connect(brokerUrl());
});

afterAll(async () => {
  await app?.close();
  await raw?.close();
  await deleteTopology({ queues: [Q, `${Q}.dlq`, retryQueueName(DELAY)], exchanges: [X, retryQueueName(DELAY)] });
});

describe('WarrenContext reports the original route on every attempt', () => {
  it('after a retry, in the context and in the failure logs, and after a redrive from the dead-letter queue', async () => {
    const orders = app.get(Orders);
    await app.get(Publisher).publish(X, 'order.cancelled', { id: 'o-1' });
    const dead = await nextMessage(raw, `${Q}.dlq`);

    const original = { exchange: X, routingKey: 'order.cancelled' };
    expect(orders.seen).toEqual([
      { ...original, attempt: 1, deliveryExchange: X, deliveryRoutingKey: 'order.cancelled' },
      // The retry's own route, under its own names.
      { ...original, attempt: 2, deliveryExchange: '', deliveryRoutingKey: Q },
    ]);
    const where = `Orders.on: message from exchange "${X}" with routing key "order.cancelled"`;
    expect(logged('warn')).toContain(
      `${where} failed (attempt 1): Error: cannot handle order.cancelled; retrying in ${DELAY} ms`,
    );
    // The dead-letter line carries the stack on the lines below it.
    expect(logged('error').map((l) => l.split('\n')[0])).toContain(
      `${where} failed 2 times (Error: cannot handle order.cancelled); dead-lettered`,
    );
    expect(dead.properties.headers).toMatchObject({
      [FAILURE_HEADERS.exchange]: X,
      [FAILURE_HEADERS.routingKey]: 'order.cancelled',
    });

    // A redrive: the dead letter sent back to its queue by name, headers kept (as a shovel or the
    // management UI's "move messages" does).
    orders.failing = false;
    const ch = await raw.createConfirmChannel();
    ch.sendToQueue(Q, dead.content, { contentType: dead.properties.contentType, headers: dead.properties.headers });
    await ch.waitForConfirms();
    await ch.close();
    await waitUntil('the redriven message', () => orders.seen.length === 3);
    expect(orders.seen[2]).toMatchObject({ ...original, deliveryExchange: '', deliveryRoutingKey: Q });
  });

  it('believes the route headers only on a delivery through the default exchange', async () => {
    const orders = app.get(Orders);
    orders.seen = [];
    orders.failing = false;
    const ch = await raw.createConfirmChannel();
    // A publisher writing Warren's headers on a message it routes through a named exchange.
    ch.publish(X, 'order.placed', Buffer.from('{}'), {
      contentType: 'application/json',
      headers: { [FAILURE_HEADERS.exchange]: 'elsewhere', [FAILURE_HEADERS.routingKey]: 'order.spoofed' },
    });
    await ch.waitForConfirms();
    await ch.close();
    await waitUntil('the message', () => orders.seen.length === 1);
    expect(orders.seen[0]).toEqual({
      exchange: X,
      routingKey: 'order.placed',
      attempt: 1,
      deliveryExchange: X,
      deliveryRoutingKey: 'order.placed',
    });
  });
});

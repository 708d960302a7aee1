import { Injectable, type INestApplicationContext } from '@nestjs/common';
import amqplib from 'amqplib';
import {
  Consume,
  describeTopology,
  Publisher,
  Subscribe,
  TopologyError,
  type WarrenContext,
  type WarrenModuleOptions,
} from 'nestjs-warren';
import { memoryBroker } from 'nestjs-warren/memory';
import { bootApp } from './support/app.js';
import { type BrokerBinding, brokerUrl, deleteTopology, management, unique, waitUntil } from './support/broker.js';
import { closeConnection } from './support/connections.js';

const ORDERS = unique('e2e.xb-orders');
const AUDIT = unique('e2e.xb-audit');
const AUDIT_QUEUE = unique('e2e.xb-audit-log');
const REFUNDS = unique('e2e.xb-refunds');
const REFUNDS_QUEUE = unique('e2e.xb-refunds-q');
const CLIENT = unique('xb');

@Injectable()
class Handlers {
  audited: string[] = [];
  refunds: { key: string; exchange: string }[] = [];

  @Consume(AUDIT_QUEUE)
  onAudit(payload: { key: string }) {
    this.audited.push(payload.key);
  }

  // The handler's own exchange is fed by another: what `orders` routes with order.refunded.
  @Subscribe(REFUNDS, {
    exchangeType: 'fanout',
    queue: REFUNDS_QUEUE,
    from: { exchange: ORDERS, keys: 'order.refunded' },
  })
  onRefund(payload: { key: string }, ctx: WarrenContext) {
    this.refunds.push({ key: payload.key, exchange: ctx.exchange });
  }
}

/** The module's own declarations: an internal audit exchange that gets every order.* of `orders`. */
const options: Partial<WarrenModuleOptions> = {
  clientProvidedName: CLIENT,
  topology: {
    exchanges: [
      { name: ORDERS, type: 'topic' },
      { name: AUDIT, type: 'fanout', internal: true },
    ],
    queues: [{ name: AUDIT_QUEUE }],
    bindings: [{ exchange: AUDIT, queue: AUDIT_QUEUE, routingKey: '' }],
    exchangeBindings: [{ source: ORDERS, destination: AUDIT, routingKey: 'order.*' }],
  },
};

async function exchangeBindingsFrom(exchange: string): Promise<string[]> {
  const all = await management<BrokerBinding[]>(`/api/exchanges/%2F/${encodeURIComponent(exchange)}/bindings/source`);
  return all
    .filter((b) => b.destination_type === 'exchange')
    .map((b) => `${b.source} → ${b.destination} ${b.routing_key}`)
    .sort();
}

async function publishAll(app: INestApplicationContext): Promise<void> {
  const publisher = app.get(Publisher);
  for (const key of ['order.placed', 'order.refunded', 'order.placed.eu', 'invoice.sent']) {
    await publisher.publish(ORDERS, key, { key });
  }
}

/** What arrived, once the messages that should have arrived did (and a moment for any stray one). */
async function arrivals(handlers: Handlers): Promise<{ audited: string[]; refunds: Handlers['refunds'] }> {
  await waitUntil('the routed messages', () => handlers.audited.length >= 2 && handlers.refunds.length >= 1);
  await new Promise((r) => setTimeout(r, 200));
  return { audited: [...handlers.audited].sort(), refunds: handlers.refunds };
}

const EXPECTED = {
  audited: ['order.placed', 'order.refunded'],
  refunds: [{ key: 'order.refunded', exchange: ORDERS }],
};

describe('exchange-to-exchange bindings on RabbitMQ', () => {
  let app: INestApplicationContext;

  beforeAll(async () => {
    app = await bootApp({ providers: [Handlers] }, options);
  });

  afterAll(async () => {
    await app?.close();
    await deleteTopology({
      queues: [AUDIT_QUEUE, `${AUDIT_QUEUE}.dlq`, REFUNDS_QUEUE, `${REFUNDS_QUEUE}.dlq`],
      exchanges: [ORDERS, AUDIT, REFUNDS],
    });
  });

  it('declares the bindings on the broker and routes through them, by the source exchange’s type', async () => {
    expect(await exchangeBindingsFrom(ORDERS)).toEqual(
      [`${ORDERS} → ${AUDIT} order.*`, `${ORDERS} → ${REFUNDS} order.refunded`].sort(),
    );
    await publishAll(app);
    // A delivery names the exchange it was published to, not the one it went through.
    expect(await arrivals(app.get(Handlers))).toEqual(EXPECTED);
  });

  it('shows them in the topology read-out, with who declared each', async () => {
    const [connection] = (await describeTopology(app)).connections;
    expect(connection.exchangeBindings).toEqual([
      {
        source: ORDERS,
        destination: AUDIT,
        routingKey: 'order.*',
        arguments: {},
        declaredBy: ['WarrenModule options (topology)'],
      },
      {
        source: ORDERS,
        destination: REFUNDS,
        routingKey: 'order.refunded',
        arguments: {},
        declaredBy: ['Handlers.onRefund'],
      },
    ]);
  });

  it('declares them again after the connection is lost', async () => {
    const raw = await amqplib.connect(brokerUrl());
    try {
      const ch = await raw.createChannel();
      await ch.unbindExchange(AUDIT, ORDERS, 'order.*');
      await ch.unbindExchange(REFUNDS, ORDERS, 'order.refunded');
      await ch.close();
    } finally {
      await raw.close();
    }
    expect(await exchangeBindingsFrom(ORDERS)).toEqual([]);
    await closeConnection(`${CLIENT}:consume`);
    await waitUntil(
      'both exchange bindings back',
      async () => (await exchangeBindingsFrom(ORDERS)).length === 2,
      20_000,
    );
    const handlers = app.get(Handlers);
    handlers.audited.length = 0;
    handlers.refunds.length = 0;
    // The consumers may start a moment after the bindings: publish until one gets through.
    await waitUntil(
      'a message through the re-declared binding',
      async () => {
        await app.get(Publisher).publish(ORDERS, 'order.probe', { key: 'order.probe' });
        await new Promise((r) => setTimeout(r, 50));
        return handlers.audited.includes('order.probe');
      },
      20_000,
    );
    handlers.audited.length = 0;
    await publishAll(app);
    expect(await arrivals(handlers)).toEqual(EXPECTED);
  }, 45_000);

  it('fails the boot on a binding whose exchange nothing declares, naming it', async () => {
    const missing = unique('e2e.xb-missing');
    await expect(
      bootApp(
        { providers: [] },
        {
          topology: {
            exchanges: [{ name: ORDERS, type: 'topic' }],
            exchangeBindings: [{ source: ORDERS, destination: missing, routingKey: '#' }],
          },
        },
      ),
    ).rejects.toThrow(
      new TopologyError(
        `WarrenModule options (topology): binding of exchange "${missing}" to exchange "${ORDERS}": its destination "${missing}" is an exchange nothing declares; declare it first (topology.exchanges)`,
      ),
    );
  });
});

describe('exchange-to-exchange bindings on memory://', () => {
  it('routes the same way through the in-memory broker', async () => {
    const name = unique('xb-memory');
    const app = await bootApp({ providers: [Handlers] }, { ...options, url: `memory://${name}` });
    try {
      expect(
        memoryBroker(name)
          .bindings(ORDERS)
          .filter((b) => b.destinationType === 'exchange'),
      ).toHaveLength(2);
      await publishAll(app);
      expect(await arrivals(app.get(Handlers))).toEqual(EXPECTED);
    } finally {
      await app.close();
    }
  });
});

import { Injectable, type INestApplicationContext, Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import amqplib from 'amqplib';
import {
  Consume,
  ConsumerRegistry,
  getWarrenToken,
  InjectConsumerRegistry,
  InjectPublisher,
  InjectRpcClient,
  Publisher,
  RpcClient,
  RpcHandler,
  RpcNoRouteError,
  Subscribe,
  WarrenConfigurationError,
  WarrenDecoratorError,
  WarrenHealthIndicator,
  WarrenModule,
} from 'nestjs-warren';
import { recordHandled, recordPublished, resetDeclaredTopology } from 'nestjs-warren/testing';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, management, unique, waitUntil } from './support/broker.js';

// The same names on every connection: each vhost holds its own queue and exchange by that name,
// so a message that crossed from one connection to another would land in the wrong handler.
const WORK = unique('e2e.named.work');
const EVENTS = unique('e2e.named.events');
const RPC = unique('e2e.named.rpc');
const AUDIT = unique('e2e.named.audit');
const RUNTIME = unique('e2e.named.runtime');
const TYPO = unique('e2e.named.typo');
const LOGGED = unique('e2e.named.logged');

const BILLING_VHOST = unique('e2e-named-billing');
const SHIPPING_VHOST = unique('e2e-named-shipping');

function vhostUrl(vhost: string): string {
  const url = new URL(brokerUrl());
  url.pathname = `/${encodeURIComponent(vhost)}`;
  return url.toString();
}

type Connection = 'default' | 'billing' | 'shipping';
const work: Record<Connection, unknown[]> = { default: [], billing: [], shipping: [] };
const events: Record<Connection, unknown[]> = { default: [], billing: [], shipping: [] };

const local = { durable: false, failure: 'drop' } as const;
const localExchange = { exchangeOptions: { durable: false } };

@Injectable()
class DefaultWorker {
  @Consume(WORK, local)
  work(payload: unknown) {
    work.default.push(payload);
  }

  @Subscribe(EVENTS, 'order.*', localExchange)
  onEvent(payload: unknown) {
    events.default.push(payload);
  }

  @RpcHandler(RPC, { durable: false })
  answer(n: number) {
    return { connection: 'default', n };
  }
}

@Injectable()
class BillingWorker {
  @Consume(WORK, { ...local, connection: 'billing' })
  work(payload: unknown) {
    work.billing.push(payload);
  }

  @Subscribe(EVENTS, 'order.*', { ...localExchange, connection: 'billing' })
  onEvent(payload: unknown) {
    events.billing.push(payload);
  }

  @RpcHandler(RPC, { durable: false, connection: 'billing' })
  answer(n: number) {
    return { connection: 'billing', n };
  }
}

@Injectable()
class ShippingWorker {
  @Consume(WORK, { ...local, connection: 'shipping' })
  work(payload: unknown) {
    work.shipping.push(payload);
  }

  @Subscribe(EVENTS, 'order.*', { ...localExchange, connection: 'shipping' })
  onEvent(payload: unknown) {
    events.shipping.push(payload);
  }
}

/** One method, one decorator per named connection. */
@Injectable()
class Auditor {
  @Subscribe(AUDIT, '#', { ...localExchange, connection: 'billing' })
  @Subscribe(AUDIT, '#', { ...localExchange, connection: 'shipping' })
  audit() {}
}

@Injectable()
class Dispatcher {
  constructor(
    readonly publisher: Publisher,
    @InjectPublisher('billing') readonly billingPublisher: Publisher,
    @InjectPublisher('shipping') readonly shippingPublisher: Publisher,
    readonly rpc: RpcClient,
    @InjectRpcClient('billing') readonly billingRpc: RpcClient,
    @InjectRpcClient('shipping') readonly shippingRpc: RpcClient,
    readonly registry: ConsumerRegistry,
    @InjectConsumerRegistry('billing') readonly billingRegistry: ConsumerRegistry,
  ) {}
}

let app: INestApplicationContext;
let dispatcher: Dispatcher;

beforeAll(async () => {
  const user = decodeURIComponent(new URL(brokerUrl()).username);
  for (const vhost of [BILLING_VHOST, SHIPPING_VHOST]) {
    const path = encodeURIComponent(vhost);
    await management(`/api/vhosts/${path}`, { method: 'PUT' });
    await management(`/api/permissions/${path}/${encodeURIComponent(user)}`, {
      method: 'PUT',
      body: JSON.stringify({ configure: '.*', write: '.*', read: '.*' }),
    });
  }
  app = await bootApp({
    imports: [
      WarrenModule.forRoot({ name: 'billing', url: vhostUrl(BILLING_VHOST), connectTimeoutMs: 10_000 }),
      WarrenModule.forRootAsync({
        name: 'shipping',
        useFactory: async () => ({ url: vhostUrl(SHIPPING_VHOST), connectTimeoutMs: 10_000 }),
      }),
    ],
    providers: [DefaultWorker, BillingWorker, ShippingWorker, Auditor, Dispatcher],
  });
  dispatcher = app.get(Dispatcher);
});

afterAll(async () => {
  await app?.close();
  // Deleting a vhost deletes everything in it.
  for (const vhost of [BILLING_VHOST, SHIPPING_VHOST]) {
    await management(`/api/vhosts/${encodeURIComponent(vhost)}`, { method: 'DELETE' }).catch(() => undefined);
  }
  await deleteTopology({ queues: [WORK, RPC, RUNTIME, TYPO], exchanges: [EVENTS] });
});

/** The queue as its vhost's broker holds it right now (not the management API's lagging statistics). */
async function queueIn(vhost: string | undefined, queue: string) {
  const connection = await amqplib.connect(vhost === undefined ? brokerUrl() : vhostUrl(vhost));
  try {
    connection.on('error', () => undefined);
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    return await channel.checkQueue(queue).catch(() => undefined);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

describe('named connections', () => {
  it('declares and consumes each connection’s queues on its own vhost', async () => {
    expect(await queueIn(undefined, WORK)).toMatchObject({ consumerCount: 1 });
    expect(await queueIn(BILLING_VHOST, WORK)).toMatchObject({ consumerCount: 1 });
    expect(await queueIn(SHIPPING_VHOST, WORK)).toMatchObject({ consumerCount: 1 });
    // The RPC handler exists on the default and billing connections only.
    expect(await queueIn(SHIPPING_VHOST, RPC)).toBeUndefined();
    expect(await queueIn(BILLING_VHOST, RPC)).toMatchObject({ consumerCount: 1 });
  });

  it('gives each handler the messages published on its connection, and only those', async () => {
    const sent: Record<Connection, Publisher> = {
      default: dispatcher.publisher,
      billing: dispatcher.billingPublisher,
      shipping: dispatcher.shippingPublisher,
    };
    for (const [connection, publisher] of Object.entries(sent)) {
      await publisher.sendToQueue(WORK, { to: connection });
      await publisher.publish(EVENTS, 'order.placed', { to: connection });
    }
    // Three messages per kind, one per connection: once every handler has one, none can have another's.
    await waitUntil('every handler to get its message', () =>
      [work, events].every((seen) => Object.values(seen).every((list) => list.length >= 1)),
    );
    const own = { default: [{ to: 'default' }], billing: [{ to: 'billing' }], shipping: [{ to: 'shipping' }] };
    expect(work).toEqual(own);
    expect(events).toEqual(own);
  });

  it('injects each connection’s Publisher, RpcClient and ConsumerRegistry by name, and the default by type', async () => {
    expect(dispatcher.publisher).toBe(app.get(Publisher));
    expect(dispatcher.billingPublisher).toBe(app.get(getWarrenToken(Publisher, 'billing')));
    expect(dispatcher.billingPublisher).not.toBe(dispatcher.publisher);
    expect(dispatcher.shippingPublisher).not.toBe(dispatcher.billingPublisher);
    expect(dispatcher.rpc).toBe(app.get(RpcClient));
    expect(dispatcher.billingRpc).toBe(app.get(getWarrenToken(RpcClient, 'billing')));
    expect(dispatcher.registry).toBe(app.get(ConsumerRegistry));
    expect(dispatcher.billingRegistry).toBe(app.get(getWarrenToken(ConsumerRegistry, 'billing')));
    expect(getWarrenToken(Publisher)).toBe(Publisher);
    expect(getWarrenToken(Publisher, 'default')).toBe(Publisher);

    // Same queue name, two vhosts, two servers: each client reaches its own.
    await expect(dispatcher.billingRpc.call(RPC, 1)).resolves.toEqual({ connection: 'billing', n: 1 });
    await expect(dispatcher.rpc.call(RPC, 2)).resolves.toEqual({ connection: 'default', n: 2 });
    await expect(dispatcher.shippingRpc.call(RPC, 3, { timeout: 5000 })).rejects.toBeInstanceOf(RpcNoRouteError);
  });

  it('wires a method decorated for two connections once on each, and on no other', () => {
    const labels = (registry: ConsumerRegistry) => registry.list().map((c) => c.label);
    const shipping = app.get<ConsumerRegistry>(getWarrenToken(ConsumerRegistry, 'shipping'));
    expect(labels(dispatcher.billingRegistry).filter((l) => l === 'Auditor.audit')).toHaveLength(1);
    expect(labels(shipping).filter((l) => l === 'Auditor.audit')).toHaveLength(1);
    expect(labels(dispatcher.registry)).not.toContain('Auditor.audit');
    expect(labels(dispatcher.registry).sort()).toEqual([
      'DefaultWorker.answer',
      'DefaultWorker.onEvent',
      'DefaultWorker.work',
    ]);
  });

  it('subscribes at runtime on a named connection’s registry, and refuses a runtime subscription naming another', async () => {
    const got: unknown[] = [];
    const handle = await dispatcher.billingRegistry.consume(RUNTIME, (payload) => void got.push(payload), local);
    await dispatcher.billingPublisher.sendToQueue(RUNTIME, 'runtime');
    await waitUntil('the runtime consumer to get its message', () => got.length === 1);
    expect(got).toEqual(['runtime']);
    expect(await queueIn(BILLING_VHOST, RUNTIME)).toMatchObject({ consumerCount: 1 });
    expect(await queueIn(undefined, RUNTIME)).toBeUndefined();
    await handle.cancel();

    await expect(
      dispatcher.registry.consume(RUNTIME, () => undefined, { ...local, connection: 'billing' }),
    ).rejects.toThrow(
      new WarrenConfigurationError(
        `consume(${RUNTIME}): options.connection is "billing", but this is the ConsumerRegistry of the connection ` +
          `"default": use that connection's registry (@InjectConsumerRegistry('billing'))`,
      ),
    );
  });

  it('tags the log lines of a named connection’s consumers and failure handling with its name', async () => {
    const lines: { message: string; context: unknown }[] = [];
    const record = (message: unknown, ...params: unknown[]) =>
      void lines.push({ message: String(message), context: params.at(-1) });
    app.useLogger({ log: record, warn: record, error: record });
    try {
      const handle = await dispatcher.billingRegistry.consume(
        LOGGED,
        () => {
          throw new Error('refused on purpose');
        },
        { ...local, label: 'logged' },
      );
      await dispatcher.billingPublisher.sendToQueue(LOGGED, 'fails');
      await waitUntil('the dropped message to be logged', () => lines.some((l) => l.message.includes('dropped')));
      // The broker cancels the consumer of a queue deleted under it; the consumer logs that.
      const connection = await amqplib.connect(vhostUrl(BILLING_VHOST));
      await (await connection.createChannel()).deleteQueue(LOGGED);
      await connection.close();
      await waitUntil('the cancel to be logged', () => lines.some((l) => l.message.includes('cancelled the consumer')));
      await handle.cancel();
    } finally {
      // Back to Nest's own logger (the levels set by bootApp stay).
      app.useLogger(new Logger());
    }
    expect(lines.filter((l) => l.message.startsWith('logged: '))).toEqual([
      { message: expect.stringContaining('failed and was dropped'), context: 'Warren:billing' },
      { message: expect.stringContaining('the broker cancelled the consumer'), context: 'Warren:billing' },
    ]);
  });

  it('records, per connection, what the testing helpers are asked for', async () => {
    const handled = {
      default: recordHandled(app, 'DefaultWorker.work'),
      billing: recordHandled(app, { connection: 'billing', label: 'BillingWorker.work' }),
      shipping: recordHandled(app, { connection: 'shipping' }),
    };
    const published = recordPublished(app, 'billing');
    await dispatcher.publisher.sendToQueue(WORK, 'kit default');
    await dispatcher.billingPublisher.sendToQueue(WORK, 'kit billing');
    await dispatcher.shippingPublisher.sendToQueue(WORK, 'kit shipping');
    await Promise.all(Object.values(handled).map((log) => log.waitForCount(1)));
    expect(handled.default.entries.map((m) => m.payload)).toEqual(['kit default']);
    expect(handled.billing.entries.map((m) => m.payload)).toEqual(['kit billing']);
    expect(handled.shipping.entries.map((m) => [m.label, m.payload])).toEqual([
      ['ShippingWorker.work', 'kit shipping'],
    ]);
    expect(published.entries.map((m) => m.payload)).toEqual(['kit billing']);
    for (const log of [...Object.values(handled), published]) log.stop();

    // Purging billing's queues empties billing's vhost, not the default one's.
    const [billingWork] = dispatcher.billingRegistry.list().filter((c) => c.label === 'BillingWorker.work');
    await billingWork.pause();
    await dispatcher.registry
      .list()
      .find((c) => c.label === 'DefaultWorker.work')!
      .pause();
    await dispatcher.billingPublisher.sendToQueue(WORK, 'to purge');
    await dispatcher.publisher.sendToQueue(WORK, 'to keep');
    await waitUntil('both messages to be queued', async () => {
      const counts = [await queueIn(BILLING_VHOST, WORK), await queueIn(undefined, WORK)];
      return counts.every((q) => q?.messageCount === 1);
    });
    await resetDeclaredTopology(app, 'purge', 'billing');
    expect(await queueIn(BILLING_VHOST, WORK)).toMatchObject({ messageCount: 0 });
    expect(await queueIn(undefined, WORK)).toMatchObject({ messageCount: 1 });
    await billingWork.resume();
    await dispatcher.registry
      .list()
      .find((c) => c.label === 'DefaultWorker.work')!
      .resume();
    await waitUntil('the default worker to take the kept message', () => work.default.includes('to keep'));
    expect(work.billing).not.toContain('to purge');
  });

  it('has a health indicator per connection, and names its connections after it on the broker', async () => {
    const billing = app.get<WarrenHealthIndicator>(getWarrenToken(WarrenHealthIndicator, 'billing'));
    const shipping = app.get<WarrenHealthIndicator>(getWarrenToken(WarrenHealthIndicator, 'shipping'));
    const byDefault = app.get(WarrenHealthIndicator);
    expect(billing.isReady && shipping.isReady && byDefault.isReady).toBe(true);
    expect(billing.readiness('billing').billing).toMatchObject({
      status: 'up',
      consumers: { total: dispatcher.billingRegistry.list().length, inactive: [] },
    });
    expect(shipping.readiness().rabbitmq.consumers.total).toBe(3);
    expect(byDefault.readiness().rabbitmq.consumers.total).toBe(3);

    interface BrokerConnection {
      vhost: string;
      client_properties: { connection_name?: string };
    }
    let connections: BrokerConnection[] = [];
    const names = ['warren-billing:consume', 'warren-billing:publish', 'warren-shipping:consume'];
    await waitUntil('the named connections in the management API', async () => {
      connections = await management<BrokerConnection[]>('/api/connections');
      return names.every((n) => connections.some((c) => c.client_properties.connection_name === n));
    });
    const vhostOf = (name: string) => connections.find((c) => c.client_properties.connection_name === name)?.vhost;
    expect(names.map(vhostOf)).toEqual([BILLING_VHOST, BILLING_VHOST, SHIPPING_VHOST]);
  });
});

describe('choosing a connection that is not registered', () => {
  @Injectable()
  class Typo {
    @Consume(TYPO, { ...local, connection: 'biling' })
    work() {}
  }

  @Injectable()
  class Unnamed {
    @Consume(TYPO, local)
    work() {}
  }

  it('fails the boot, naming the handler and the connection, before declaring anything', async () => {
    const boot = bootApp({ providers: [Typo] });
    await expect(boot).rejects.toBeInstanceOf(WarrenConfigurationError);
    await expect(boot).rejects.toThrow(
      `Typo.work: @Consume() names the connection "biling", which is not registered ` +
        `(WarrenModule.forRoot({ name: 'biling', ... })); the app registers "default"`,
    );
    expect(await queueIn(undefined, TYPO)).toBeUndefined();
  });

  it('fails the boot for a handler naming no connection in an app with named connections only', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [WarrenModule.forRoot({ name: 'billing', url: vhostUrl(BILLING_VHOST), connectTimeoutMs: 10_000 })],
      providers: [Unnamed],
    }).compile();
    moduleRef.useLogger(['error']);
    await expect(moduleRef.init()).rejects.toThrow(
      `Unnamed.work: @Consume() names no connection, so it needs the default one, which is not registered ` +
        `(WarrenModule.forRoot() without a name); the app registers "billing": name one with { connection }`,
    );
    await moduleRef.close();
    expect(await queueIn(BILLING_VHOST, TYPO)).toBeUndefined();
  });

  it('fails the boot when two modules register the same name', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        WarrenModule.forRoot({ name: 'billing', url: vhostUrl(BILLING_VHOST), connectTimeoutMs: 10_000 }),
        WarrenModule.forRoot({ name: 'billing', url: vhostUrl(SHIPPING_VHOST), connectTimeoutMs: 10_000 }),
      ],
    }).compile();
    moduleRef.useLogger(['error']);
    await expect(moduleRef.init()).rejects.toThrow(/registers the connection "billing" twice/);
    await moduleRef.close();
  });

  it('refuses an empty connection name where the handler is declared', () => {
    expect(() => {
      class Empty {
        @Consume(TYPO, { connection: '' })
        work() {}
      }
      return Empty;
    }).toThrow(
      new WarrenDecoratorError('@Consume() on Empty.work: options.connection must be a non-empty string, got ""'),
    );
  });
});

import { Controller, Injectable, type INestApplication, type INestApplicationContext } from '@nestjs/common';
import { type ClientProxy, ClientsModule, EventPattern, MessagePattern } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import amqplib, { type ChannelModel } from 'amqplib';
import {
  Ctx,
  Payload,
  RpcClient,
  RpcHandler,
  RpcRemoteError,
  Subscribe,
  TopologyError,
  WarrenContext,
  WarrenDecoratorError,
  WarrenModule,
} from 'nestjs-warren';
import { WarrenClientProxy, WarrenServer } from 'nestjs-warren/microservices';
import { firstValueFrom } from 'rxjs';
import { InventoryClient } from '../src/microservices-port/inventory.client.js';
import { InventoryController } from '../src/microservices-port/inventory.controller.js';
import {
  InventoryClientModule,
  inventoryServer,
  InventoryServiceModule,
} from '../src/microservices-port/inventory.port.js';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';

const EVENTS = unique('e2e.ms.events');
const SERVICE = unique('e2e-ms-inventory');
const SUM = unique('e2e.ms.sum');
const NOTIFY = unique('e2e.ms.notify');
const DOUBLE = unique('e2e.ms.double');
const SUBSCRIBED = unique('e2e.ms.subscribed');

/** Plain @nestjs/microservices handlers, next to the ported inventory service. */
@Controller()
class Patterns {
  readonly notified: unknown[] = [];
  readonly alsoNotified: unknown[] = [];

  // Warren's own @Payload()/@Ctx() work on @MessagePattern handlers too.
  @MessagePattern(SUM)
  sum(@Payload('numbers') numbers: number[], @Ctx() context: WarrenContext) {
    return {
      sum: numbers.reduce((a, b) => a + b, 0),
      queue: context.queue,
      isWarren: context instanceof WarrenContext,
    };
  }

  @EventPattern(NOTIFY)
  onNotify(data: unknown) {
    this.notified.push(data);
  }

  @EventPattern(NOTIFY)
  alsoOnNotify(data: unknown) {
    this.alsoNotified.push(data);
  }
}

/** Warren's decorators in the same hybrid app. */
@Injectable()
class WarrenSide {
  readonly received: unknown[] = [];

  @RpcHandler(DOUBLE, { durable: false })
  double(n: number) {
    return n * 2;
  }

  @Subscribe(EVENTS, NOTIFY, { queue: SUBSCRIBED, durable: false, failure: 'drop' })
  onNotify(payload: unknown) {
    this.received.push(payload);
  }
}

let server: INestApplication;
let client: INestApplicationContext;
let connection: ChannelModel;

beforeAll(async () => {
  const url = brokerUrl();
  const serverRef = await Test.createTestingModule({
    imports: [WarrenModule.forRoot({ url, connectionName: 'e2e-ms-server' }), InventoryServiceModule],
    controllers: [Patterns],
    providers: [WarrenSide],
  }).compile();
  serverRef.useLogger(['error', 'warn']);
  server = serverRef.createNestApplication({ logger: ['error', 'warn'] });
  server.connectMicroservice(
    {
      strategy: inventoryServer({
        url,
        eventsExchange: EVENTS,
        service: SERVICE,
        connectionName: 'e2e-ms-transport',
        eventQueues: { failure: 'dead-letter' },
      }),
    },
    { inheritAppConfig: true },
  );
  await server.startAllMicroservices();
  await server.init();

  const clientRef = await Test.createTestingModule({
    imports: [
      WarrenModule.forRoot({ url, connectionName: 'e2e-ms-client' }),
      InventoryClientModule.register({ url, eventsExchange: EVENTS }),
      ClientsModule.register([
        { name: 'RAW', customClass: WarrenClientProxy, options: { url, eventsExchange: EVENTS } },
      ]),
    ],
  }).compile();
  clientRef.useLogger(['error', 'warn']);
  client = await clientRef.init();
  connection = await amqplib.connect(url);
});

afterAll(async () => {
  await client?.close();
  await server?.close();
  await connection?.close();
  await deleteTopology({
    exchanges: [EVENTS],
    queues: [
      'inventory.level',
      '{"cmd":"inventory.total"}',
      `${SERVICE}.inventory.changed`,
      `${SERVICE}.${NOTIFY}`,
      SUM,
      DOUBLE,
      SUBSCRIBED,
    ].flatMap((q) => [q, `${q}.dlq`]),
  });
});

describe('the inventory service ported from the RMQ transport', () => {
  it('an @EventPattern handler receives ClientProxy.emit()', async () => {
    const inventory = client.get(InventoryClient);
    await inventory.change({ sku: 'carrot', delta: 5 });
    await inventory.change({ sku: 'carrot', delta: -2 });
    const controller = server.get(InventoryController);
    await waitUntil('both changes', () => controller.applied.length === 2);
    expect(controller.applied).toEqual([
      { sku: 'carrot', delta: 5 },
      { sku: 'carrot', delta: -2 },
    ]);
  });

  it('a @MessagePattern handler answers ClientProxy.send()', async () => {
    await expect(client.get(InventoryClient).level('carrot')).resolves.toEqual({ sku: 'carrot', level: 3 });
  });

  it('an object pattern is served from the queue named by its JSON form', async () => {
    await expect(client.get(InventoryClient).total()).resolves.toBe(3);
    const { consumerCount } = await (await connection.createChannel()).checkQueue('{"cmd":"inventory.total"}');
    expect(consumerCount).toBe(1);
  });

  it("an RpcException arrives as an RpcRemoteError with the exception's message and code", async () => {
    const error = await client
      .get(InventoryClient)
      .level('turnip')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcRemoteError);
    expect(error).toMatchObject({ remoteMessage: 'no such sku: turnip', code: 'UNKNOWN_SKU' });
  });

  it('event patterns are consumed from <service>.<pattern>, bound to the events exchange', async () => {
    const channel = await connection.createChannel();
    const { consumerCount } = await channel.checkQueue(`${SERVICE}.inventory.changed`);
    expect(consumerCount).toBe(1);
  });
});

describe('WarrenClientProxy and WarrenServer with Warren’s own handlers', () => {
  const raw = () => client.get<ClientProxy>('RAW');

  it('send() reaches an @RpcHandler', async () => {
    await expect(firstValueFrom(raw().send(DOUBLE, 21))).resolves.toBe(42);
  });

  it('RpcClient.call() reaches a @MessagePattern, whose handler gets the WarrenContext', async () => {
    await expect(client.get(RpcClient).call(SUM, { numbers: [1, 2, 3] })).resolves.toEqual({
      sum: 6,
      queue: SUM,
      isWarren: true,
    });
  });

  it('emit() reaches every @EventPattern handler of the pattern and @Subscribe handlers', async () => {
    await firstValueFrom(raw().emit(NOTIFY, { hello: 'everyone' }), { defaultValue: undefined });
    const patterns = server.get(Patterns);
    const warren = server.get(WarrenSide);
    await waitUntil('all three handlers', () =>
      [patterns.notified, patterns.alsoNotified, warren.received].every((seen) => seen.length === 1),
    );
    expect([patterns.notified, patterns.alsoNotified, warren.received]).toEqual([
      [{ hello: 'everyone' }],
      [{ hello: 'everyone' }],
      [{ hello: 'everyone' }],
    ]);
  });
});

describe('WarrenServer', () => {
  /** What `listen()` reports for a server with one handler of `pattern`. */
  async function listenError(server: WarrenServer, pattern: string, isEvent: boolean): Promise<unknown> {
    server.addHandler(pattern, async () => undefined, isEvent);
    return new Promise((resolve) => void server.listen(resolve));
  }

  it('names @EventPattern() or @MessagePattern() and the pattern when its queue settings are wrong', async () => {
    const url = brokerUrl();
    const event = await listenError(new WarrenServer({ url, eventQueues: { prefetch: -1 } }), 'bad.event', true);
    expect(event).toBeInstanceOf(WarrenDecoratorError);
    expect((event as Error).message).toBe(
      '@EventPattern() on pattern "bad.event": prefetch must be an integer from 1 to 65535, got -1',
    );
    const rpc = await listenError(new WarrenServer({ url, messageQueues: { prefetch: -1 } }), 'bad.rpc', false);
    expect(rpc).toBeInstanceOf(WarrenDecoratorError);
    expect((rpc as Error).message).toBe(
      '@MessagePattern() on pattern "bad.rpc": prefetch must be an integer from 1 to 65535, got -1',
    );
  });

  it('puts several @EventPatterns on one service queue with eventsQueue, each event to its own pattern', async () => {
    const url = brokerUrl();
    const exchange = unique('e2e.ms.svc-events');
    const queue = unique('e2e.ms.svc');
    const seen: [string, string][] = [];
    // `ctx: unknown`: @EventPattern's typing allows only `unknown` after the payload.
    @Controller()
    class Stock {
      @EventPattern('stock.added')
      onAdded(_: unknown, @Ctx() ctx: unknown) {
        seen.push(['onAdded', (ctx as WarrenContext).routingKey]);
      }

      @EventPattern('stock.removed.*')
      onRemoved(_: unknown, @Ctx() ctx: unknown) {
        seen.push(['onRemoved', (ctx as WarrenContext).routingKey]);
      }

      @EventPattern('#')
      onOther(_: unknown, @Ctx() ctx: unknown) {
        seen.push(['onOther', (ctx as WarrenContext).routingKey]);
      }
    }
    const ref = await Test.createTestingModule({ controllers: [Stock] }).compile();
    ref.useLogger(['error', 'warn']);
    const service = ref.createNestMicroservice({
      strategy: new WarrenServer({ url, eventsExchange: exchange, eventsQueue: queue, fallbackPattern: '#' }),
      logger: ['error', 'warn'],
    });
    await service.listen();
    try {
      const ch = await connection.createConfirmChannel();
      for (const key of ['stock.added', 'stock.removed.damaged', 'stock.counted', 'stock.added']) {
        ch.publish(exchange, key, Buffer.from('{}'), { contentType: 'application/json' });
      }
      await ch.waitForConfirms();
      await ch.close();
      await waitUntil('four events', () => seen.length === 4);
      expect(seen.sort()).toEqual(
        [
          ['onAdded', 'stock.added'],
          ['onAdded', 'stock.added'],
          ['onRemoved', 'stock.removed.damaged'],
          ['onOther', 'stock.counted'],
        ].sort(),
      );
      // One queue, one consumer.
      expect((await connection.createChannel().then((c) => c.checkQueue(queue))).consumerCount).toBe(1);
    } finally {
      await service.close();
      await deleteTopology({ queues: [queue, `${queue}.dlq`], exchanges: [exchange] });
    }

    // Without the fallback, `#` and `stock.added` both take stock.added.
    const overlapping = new WarrenServer({ url, eventsExchange: exchange, eventsQueue: queue });
    overlapping.addHandler('stock.added', async () => undefined, true);
    const refused = await listenError(overlapping, '#', true);
    expect(refused).toBeInstanceOf(TopologyError);
    expect((refused as Error).message).toMatch(
      /^Service queue "[^"]+": @EventPattern\(stock\.added\) \(binding key "stock\.added"\) and @EventPattern\(#\) \(binding key "#"\) both match routing key "stock\.added"/,
    );
  });
});

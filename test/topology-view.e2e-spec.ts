import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import {
  bootWithoutBroker,
  Consume,
  ConsumerRegistry,
  defineEvent,
  defineRpc,
  describeTopology,
  RpcHandler,
  Subscribe,
  TopologyError,
  WarrenModule,
} from 'nestjs-warren';
import { freePort } from 'nestjs-warren/testing';
import { brokerUrl, deleteTopology, management, unique } from './support/broker.js';

const X = unique('e2e.view');
const Placed = defineEvent<{ id: string }>(X, 'order.placed');
const Check = defineRpc<number, number>(unique('e2e.view.rpc'));
const WORK = unique('e2e.view.work');
const AUDIT = unique('e2e.view.audit');

@Injectable()
class Handlers {
  @Subscribe(Placed, { queue: `${X}.placed` })
  onPlaced() {}

  @Subscribe(X, '#', { failure: 'drop' })
  onEverything() {}

  @Consume(WORK, { prefetch: 3, failure: { mode: 'dead-letter' } })
  work() {}

  @RpcHandler(Check)
  check(n: number) {
    return n;
  }
}

@Injectable()
class AuditHandlers {
  @Consume(AUDIT, { connection: 'audit', failure: 'drop' })
  audit() {}
}

function appModule(url: string, auditUrl = url) {
  @Module({
    imports: [
      WarrenModule.forRoot({
        url,
        connectTimeoutMs: 5000,
        topology: { exchanges: [{ name: X, type: 'topic' }] },
      }),
      WarrenModule.forRoot({ name: 'audit', url: auditUrl, connectTimeoutMs: 5000 }),
    ],
    providers: [Handlers, AuditHandlers],
  })
  class AppModule {}
  return AppModule;
}

const apps: INestApplicationContext[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});
afterAll(async () => {
  await deleteTopology({
    exchanges: [X],
    queues: [`${X}.placed`, WORK, `${WORK}.dlq`, Check.queue, `${Check.queue}.dlq`, AUDIT],
  });
});

describe('the topology read-out', () => {
  it('boots an app without a broker: no RabbitMQ listens at its URL, and its whole topology is read', async () => {
    // Nothing listens on this port: a boot that tried to connect would fail within its timeout.
    const nowhere = `amqp://guest:guest@127.0.0.1:${await freePort()}`;
    const app = await bootWithoutBroker(appModule(nowhere));
    apps.push(app);
    const { connections } = describeTopology(app);

    expect(connections.map((c) => c.connection)).toEqual(['default', 'audit']);
    const [main, audit] = connections;
    expect(main.exchanges.find((e) => e.name === X)).toEqual({
      name: X,
      type: 'topic',
      durable: true,
      autoDelete: false,
      internal: false,
      arguments: {},
      declaredBy: ['WarrenModule options (topology)', 'Handlers.onPlaced', 'Handlers.onEverything'],
    });
    expect(main.bindings).toContainEqual({
      exchange: X,
      queue: `${X}.placed`,
      routingKey: 'order.placed',
      arguments: {},
      declaredBy: ['Handlers.onPlaced'],
    });
    expect(main.queues.map((q) => [q.name, q.declaredBy])).toEqual(
      expect.arrayContaining([
        [`${X}.placed`, ['Handlers.onPlaced']],
        [`${X}.placed.dlq`, ['Handlers.onPlaced']],
        [WORK, ['Handlers.work']],
        [`${WORK}.dlq`, ['Handlers.work']],
        [Check.queue, ['Handlers.check']],
      ]),
    );
    // The retry queues are shared: every handler retrying after 1 s declared the same one.
    expect(main.queues.find((q) => q.name === 'warren.retry-1000ms')?.declaredBy).toEqual(['Handlers.onPlaced']);

    const byLabel = Object.fromEntries(main.handlers.map((h) => [h.label, h]));
    expect(Object.keys(byLabel).sort()).toEqual(
      ['Handlers.check', 'Handlers.onEverything', 'Handlers.onPlaced', 'Handlers.work'].sort(),
    );
    expect(byLabel['Handlers.onPlaced']).toMatchObject({ kind: 'subscribe', contract: Placed });
    expect(byLabel['Handlers.check']).toMatchObject({ kind: 'rpc', contract: Check, queue: { name: Check.queue } });
    expect(byLabel['Handlers.work']).toMatchObject({
      kind: 'consume',
      prefetch: 3,
      failure: { mode: 'dead-letter', deadLetter: { exchange: '', routingKey: `${WORK}.dlq` } },
    });
    // A server-named queue has no name until the broker gives it one; its binding is on its handler.
    expect(byLabel['Handlers.onEverything']).toMatchObject({
      kind: 'subscribe',
      queue: { name: '', exclusive: true, durable: false },
      bindings: [{ exchange: X, queue: '', routingKey: '#', arguments: {} }],
      failure: { mode: 'drop' },
    });
    expect(byLabel['Handlers.onEverything'].contract).toBeUndefined();

    expect(audit.handlers.map((h) => [h.label, h.kind, h.queue.name])).toEqual([
      ['AuditHandlers.audit', 'consume', AUDIT],
    ]);
  });

  it('reads the same topology from an app booted on RabbitMQ as without a broker', async () => {
    const offline = await bootWithoutBroker(appModule(brokerUrl()));
    apps.push(offline);
    const expected = describeTopology(offline);
    const live = await bootOnRabbitMQ(appModule(brokerUrl()));
    expect(describeTopology(live)).toEqual(expected);
    // And the live app did declare it: the broker has the queue the read-out names.
    const queue = await management<{ name: string }>(`/api/queues/%2F/${encodeURIComponent(WORK)}`);
    expect(queue.name).toBe(WORK);
    // The registry of one connection answers for that connection alone.
    expect(live.get(ConsumerRegistry).topology()).toEqual(expected.connections[0]);
  });

  it('fails a boot without a broker the way a real boot fails: a contradiction names both declarers', async () => {
    @Injectable()
    class Clash {
      @Subscribe(X, 'a', { type: 'fanout' })
      onA() {}
    }
    @Module({ imports: [WarrenModule.forRoot({ url: brokerUrl() })], providers: [Handlers, Clash] })
    class ClashModule {}
    await expect(bootWithoutBroker(ClashModule)).rejects.toThrow(TopologyError);
    await expect(bootWithoutBroker(ClashModule)).rejects.toThrow(
      /Exchange "e2e\.view\.[0-9a-f]+" is declared differently by Handlers\.onPlaced and Clash\.onA: type "topic" vs "fanout"/,
    );
  });

  async function bootOnRabbitMQ(module: ReturnType<typeof appModule>) {
    const { NestFactory } = await import('@nestjs/core');
    const app = await NestFactory.createApplicationContext(module, { logger: ['error', 'warn'], abortOnError: false });
    apps.push(app);
    return app;
  }
});

import { Injectable } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import {
  Consume,
  Publisher,
  RpcClient,
  RpcHandler,
  RpcUnavailableError,
  WarrenConnectionError,
  WarrenHealthIndicator,
  WarrenModule,
  type WarrenModuleOptions,
} from 'nestjs-warren';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';
import { logged } from './support/logs.js';
import { TcpProxy } from './support/tcp-proxy.js';

// Boot with the broker unreachable (a TCP proxy that refuses every connection), with and without
// `waitForBroker`. Every wait is bounded; the proxy and the apps are stopped by each test.

const WORK = unique('e2e.lazy.work');
const ECHO = unique('e2e.lazy.echo');
// Queues of the module's topology, declared before the consumers' own: they make the consuming
// connection's declarations take long enough that a buffered publish, were it let go as soon as
// the publishing connection is up, would reach the broker before WORK exists.
const AHEAD = Array.from({ length: 200 }, (_, i) => `${WORK}.ahead-${i}`);

@Injectable()
class Handlers {
  readonly work: string[] = [];

  @Consume(WORK, { durable: false, failure: 'drop' })
  onWork(payload: { id: string }) {
    this.work.push(payload.id);
  }

  @RpcHandler(ECHO, { durable: false })
  echo(text: string) {
    return `echo: ${text}`;
  }
}

let proxy: TcpProxy;
let moduleRef: TestingModule | undefined;

beforeEach(async () => {
  proxy = TcpProxy.forUrl(brokerUrl());
  await proxy.start();
  proxy.refuse();
});

afterEach(async () => {
  await moduleRef?.close();
  moduleRef = undefined;
  await proxy.stop();
});

// The work queue does not exist before the app: the publishes buffered during the outage must
// wait for the app's consumer to declare it, not reach the broker first and be dropped as
// unroutable. Deleted before each test, so each boot is the queue's first.
beforeEach(() => deleteTopology({ queues: [WORK, ECHO] }));

afterAll(() => deleteTopology({ queues: [WORK, ECHO, ...AHEAD] }));

async function compile(options: Partial<WarrenModuleOptions>): Promise<TestingModule> {
  moduleRef = await Test.createTestingModule({
    imports: [
      WarrenModule.forRoot({
        url: proxy.url(brokerUrl()),
        connectionName: unique('e2e-lazy'),
        reconnectDelayMs: 200,
        ...options,
      }),
    ],
    providers: [Handlers],
  }).compile();
  moduleRef.useLogger(['error', 'warn', 'log']);
  return moduleRef;
}

describe('waitForBroker: false', () => {
  it('boots without the broker, stays not ready, then starts the consumers when the broker comes', async () => {
    await compile({
      waitForBroker: false,
      maxBufferedPublishes: 10,
      topology: { queues: AHEAD.map((name) => ({ name, durable: false })) },
    });
    await moduleRef!.init();
    const health = moduleRef!.get(WarrenHealthIndicator);
    const publisher = moduleRef!.get(Publisher);
    const rpc = moduleRef!.get(RpcClient);

    expect(health.readiness().rabbitmq).toMatchObject({
      status: 'down',
      started: false,
      connections: { consume: { connected: false }, publish: { connected: false } },
    });
    expect(health.liveness().rabbitmq.status).toBe('up');

    // Publishes wait in memory, within maxBufferedPublishes; the eleventh is refused at once.
    const ids = Array.from({ length: 10 }, (_, i) => `early-${i}`);
    const buffered = ids.map((id) => publisher.sendToQueue(WORK, { id }));
    expect(publisher.buffered).toBe(10);
    await expect(publisher.sendToQueue(WORK, { id: 'one-too-many' })).rejects.toThrow(
      `Cannot publish to queue "${WORK}": 10 messages are already waiting for the broker (maxBufferedPublishes)`,
    );
    // An RPC call cannot be served before the broker has ever been reached: it fails at once,
    // not after its timeout.
    const call = rpc.call(ECHO, 'hello', { timeout: 60_000 });
    await expect(call).rejects.toBeInstanceOf(RpcUnavailableError);
    await expect(call).rejects.toThrow(
      `RPC to "${ECHO}" not sent: the broker has not been reachable since the app started (waitForBroker: false); the app is not ready`,
    );
    expect(logged('log')).toContain(
      'not waiting for the broker (waitForBroker: false): the consumers start once it answers',
    );

    proxy.accept();
    await waitUntil('the app to be ready', () => health.isReady, 20_000);
    expect(logged('log')).toContain('2 consumer(s) started');
    // Confirmed once the broker came, and handled by the consumer that started then.
    await Promise.all(buffered);
    const handlers = moduleRef!.get(Handlers);
    await waitUntil('every buffered message handled', () => ids.every((id) => handlers.work.includes(id)));
    expect(handlers.work).not.toContain('one-too-many');
    await expect(rpc.call(ECHO, 'hello', { timeout: 10_000 })).resolves.toBe('echo: hello');
  }, 40_000);

  it('shuts down cleanly when the broker never came', async () => {
    await compile({ waitForBroker: false });
    await moduleRef!.init();
    const publisher = moduleRef!.get(Publisher);
    const pending = publisher.sendToQueue(WORK, { id: 'never-sent' }).catch((e: unknown) => e);
    await moduleRef!.close();
    moduleRef = undefined;
    expect(await pending).toBeInstanceOf(Error);
  }, 20_000);
});

describe('waitForBroker: true (the default)', () => {
  it('fails the boot after connectTimeoutMs, naming the broker', async () => {
    // The connection is made as the module is built: compile() is the boot that fails.
    const boot = compile({ connectTimeoutMs: 1500 });
    await expect(boot).rejects.toBeInstanceOf(WarrenConnectionError);
    await expect(boot).rejects.toThrow(`Cannot connect to RabbitMQ at amqp://127.0.0.1:${proxy.port}/ within 1500 ms`);
  }, 20_000);
});

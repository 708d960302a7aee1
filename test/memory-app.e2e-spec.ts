import { Injectable, type INestApplicationContext } from '@nestjs/common';
import {
  Consume,
  defineRpc,
  Publisher,
  RpcClient,
  RpcHandler,
  RpcNoRouteError,
  RpcRemoteError,
  TopologyError,
  WarrenConnection,
  type WarrenContext,
} from 'nestjs-warren';
import { memoryBroker } from 'nestjs-warren/memory';
import { bootApp } from './support/app.js';
import { unique, waitUntil } from './support/broker.js';
import { TUTORIAL_TOPIC_END, TUTORIAL_TOPIC_KEYS, tutorialTopicReceivers } from './support/tutorial-topic-table.js';

/**
 * Whole Nest apps on `memory://`: the same decorators, discovery, topology declaration, consumers,
 * publisher and RPC code as on RabbitMQ, with the broker in the test's own process.
 */

const apps: INestApplicationContext[] = [];

async function boot(url: string, ...args: Parameters<typeof bootApp>): Promise<INestApplicationContext> {
  const [metadata, options] = args;
  const app = await bootApp(metadata, { ...options, url });
  apps.push(app);
  return app;
}

afterEach(async () => {
  for (const app of apps.splice(0).reverse()) await app.close();
});

describe('the tutorial topic routing app on memory://', () => {
  const EXCHANGE = 'topic_logs';
  const END = TUTORIAL_TOPIC_END;
  const { OrangeAnimals, RabbitsAndLazyOnes } = tutorialTopicReceivers(EXCHANGE);

  it('routes every key of the tutorial as RabbitMQ does, and declares the same bindings', async () => {
    const url = `memory://${unique('topic-app')}`;
    const app = await boot(url, { providers: [OrangeAnimals, RabbitsAndLazyOnes] });
    const publisher = app.get(Publisher);
    const keys = [...TUTORIAL_TOPIC_KEYS, END];
    for (const key of keys) await publisher.publish(EXCHANGE, key, { key });
    const [q1, q2] = [app.get(OrangeAnimals), app.get(RabbitsAndLazyOnes)];
    await waitUntil('the end marker in both queues', () => q1.keys.includes(END) && q2.keys.includes(END));

    expect(q1.keys).toEqual(['quick.orange.rabbit', 'lazy.orange.elephant', 'quick.orange.fox', END]);
    expect(q2.keys).toEqual([
      'quick.orange.rabbit',
      'lazy.orange.elephant',
      'lazy.brown.fox',
      'lazy.pink.rabbit',
      'lazy.orange.new.rabbit',
      END,
    ]);
    // JSON in, parsed JSON out: the codec ran as it does over a socket.
    expect(q2.payloads[0]).toEqual({ key: 'quick.orange.rabbit' });

    const broker = memoryBroker(url.slice('memory://'.length));
    const bindings = broker.bindings(EXCHANGE);
    expect(bindings.map((b) => b.routingKey).sort()).toEqual(['*.*.rabbit', '*.orange.*', 'lazy.#']);
    // Temporary queues: server-named, exclusive, auto-delete, as Warren declares them on RabbitMQ.
    for (const b of bindings) {
      expect(b.destination).toMatch(/^amq\.gen-[\w-]{22}$/);
      expect(broker.queue(b.destination)).toMatchObject({ exclusive: true, autoDelete: true, durable: false });
    }

    // Closing the app closes its connections: its exclusive queues go, and their bindings with them.
    await apps.pop()!.close();
    expect(broker.bindings(EXCHANGE)).toEqual([]);
    expect(broker.connectionNames()).toEqual([]);
  });

  it('keeps separate memory:// brokers apart', async () => {
    const [a, b] = [`memory://${unique('broker-a')}`, `memory://${unique('broker-b')}`];
    const appA = await boot(a, { providers: [OrangeAnimals] });
    await boot(b, { providers: [OrangeAnimals] });
    expect(memoryBroker(a.slice(9)).bindings(EXCHANGE)).toHaveLength(1);
    expect(memoryBroker(b.slice(9)).bindings(EXCHANGE)).toHaveLength(1);
    await appA.get(Publisher).publish(EXCHANGE, 'x.orange.y', 1);
    await appA.get(Publisher).publish(EXCHANGE, END, 1);
    await waitUntil('the end marker', () => appA.get(OrangeAnimals).keys.includes(END));
    expect(apps[1].get(OrangeAnimals).keys).toEqual([]);
  });
});

describe('RPC on memory://', () => {
  const Fibonacci = defineRpc<number, number>('rpc_queue');
  const Failing = defineRpc<string, never>('failing_queue');
  const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2));

  class Declined extends Error {
    code = 'DECLINED';
    override name = 'Declined';
  }

  @Injectable()
  class Servers {
    handled = 0;
    @RpcHandler(Fibonacci, { durable: false })
    fibonacci(n: number) {
      this.handled++;
      return fib(n);
    }

    @RpcHandler(Failing, { durable: false })
    failing(reason: string): never {
      throw new Declined(reason);
    }
  }

  it.each(['direct-reply-to', 'exclusive'] as const)(
    'round-trips calls between two apps with %s replies, errors and unroutable requests included',
    async (replyQueue) => {
      const url = `memory://${unique(`rpc-${replyQueue}`)}`;
      const server = await boot(url, { providers: [Servers] });
      const client = (await boot(url, {}, { rpc: { replyQueue } })).get(RpcClient);

      await expect(client.call(Fibonacci, 20)).resolves.toBe(6765);
      const ns = Array.from({ length: 200 }, (_, i) => i % 25);
      await expect(Promise.all(ns.map((n) => client.call(Fibonacci, n)))).resolves.toEqual(ns.map(fib));
      expect(server.get(Servers).handled).toBe(201);

      const error = await client.call(Failing, 'card declined').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RpcRemoteError);
      expect(error).toMatchObject({ remoteName: 'Declined', remoteMessage: 'card declined', code: 'DECLINED' });

      // mandatory + basic.return, as on RabbitMQ: no waiting for the (long) timeout.
      const noRoute = await client.call('nobody_home', 1, { timeout: 60_000 }).catch((e: unknown) => e);
      expect(noRoute).toBeInstanceOf(RpcNoRouteError);
      expect(client.pendingCalls).toBe(0);
    },
  );
});

describe('failures on memory://', () => {
  it('reconnects after the broker closes the connections, and consumes again', async () => {
    const name = unique('reconnect');
    const url = `memory://${name}`;
    const received: string[] = [];

    @Injectable()
    class Worker {
      @Consume('tasks', { durable: false, prefetch: 1 })
      onTask(task: string) {
        received.push(task);
      }
    }
    const app = await boot(url, { providers: [Worker] }, { connectionName: 'worker', reconnectDelayMs: 50 });
    const publisher = app.get(Publisher);
    await publisher.sendToQueue('tasks', 'before');
    await waitUntil('the first task', () => received.includes('before'));

    const broker = memoryBroker(name);
    const connection = app.get(WarrenConnection);
    expect([connection.connectionGeneration('consume'), connection.connectionGeneration('publish')]).toEqual([1, 1]);
    expect(broker.closeConnections('worker:consume')).toBe(1);
    await waitUntil('the consumer back', () => broker.queue('tasks')?.consumerCount === 1);
    await publisher.sendToQueue('tasks', 'after');
    await waitUntil('the task after the reconnect', () => received.includes('after'));
    expect(received).toEqual(['before', 'after']);
    // A new connection for the consumers only: the publisher kept its own throughout.
    expect([connection.connectionGeneration('consume'), connection.connectionGeneration('publish')]).toEqual([2, 1]);
  });

  it('retries through the shared per-delay queue, then dead-letters, as on RabbitMQ', async () => {
    const url = `memory://${unique('retry')}`;
    const attempts: unknown[] = [];

    @Injectable()
    class Flaky {
      @Consume('jobs', { failure: { retryDelays: [30, 60] } })
      onJob(_: unknown, context: WarrenContext) {
        attempts.push(context.headers['x-warren-attempt']);
        throw new Error('always');
      }
    }
    const app = await boot(url, { providers: [Flaky] });
    await app.get(Publisher).sendToQueue('jobs', { id: 1 });
    const broker = memoryBroker(url.slice('memory://'.length));
    await waitUntil('the dead letter', () => broker.queue('jobs.dlq')?.messageCount === 1);
    expect(attempts).toEqual([undefined, 2, 3]);
  });

  it('fails the boot with PRECONDITION_FAILED when the queue exists with other arguments', async () => {
    const url = `memory://${unique('precondition')}`;

    @Injectable()
    class Plain {
      @Consume('orders', { durable: true })
      onOrder() {}
    }
    @Injectable()
    class WithTtl {
      @Consume('orders', { durable: true, arguments: { 'x-message-ttl': 1000 } })
      onOrder() {}
    }
    await boot(url, { providers: [Plain] });
    const error = await boot(url, { providers: [WithTtl] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TopologyError);
    expect((error as Error).message).toContain(
      "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'orders' in vhost '/': received the value '1000' of type 'short' but current is none",
    );
  });
});

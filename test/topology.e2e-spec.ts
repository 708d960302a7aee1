import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import amqplib from 'amqplib';
import {
  Consume,
  ConsumerRegistry,
  Publisher,
  Subscribe,
  TopologyError,
  WarrenConnectionError,
  type WarrenContext,
  WarrenDecoratorError,
  WarrenModule,
} from 'nestjs-warren';
import { freePort } from 'nestjs-warren/testing';
import { bootApp } from './support/app.js';
import { bindingsFrom, brokerUrl, deleteTopology, management, unique, waitUntil } from './support/broker.js';

const apps: INestApplicationContext[] = [];
const exchanges: string[] = [];
const queues: string[] = [];

async function boot(...args: Parameters<typeof bootApp>) {
  const app = await bootApp(...args);
  apps.push(app);
  return app;
}

afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  await deleteTopology({ exchanges: exchanges.splice(0), queues: queues.splice(0) });
});

/** Publishes `keys` in order, then `end`, and waits until every recorder has seen `end`. */
async function publishAll(
  app: INestApplicationContext,
  exchange: string,
  keys: string[],
  end: string,
  recorders: { keys: string[] }[],
) {
  const publisher = app.get(Publisher);
  for (const key of [...keys, end]) await publisher.publish(exchange, key, { key });
  await waitUntil(`the end marker "${end}"`, () => recorders.every((r) => r.keys.includes(end)));
  return recorders.map((r) => r.keys.filter((k) => k !== end));
}

describe('direct exchange (tutorial 4)', () => {
  const X = unique('e2e.direct');

  @Injectable()
  class Q1 {
    keys: string[] = [];
    @Subscribe(X, ['orange', 'black', 'end'], { type: 'direct' })
    on(_: unknown, ctx: WarrenContext) {
      this.keys.push(ctx.routingKey);
    }
  }
  @Injectable()
  class Q2 {
    keys: string[] = [];
    @Subscribe(X, ['black', 'green', 'end'], { type: 'direct' })
    on(_: unknown, ctx: WarrenContext) {
      this.keys.push(ctx.routingKey);
    }
  }

  it('routes by exact key, several bindings per queue, the same key to two queues', async () => {
    exchanges.push(X);
    const app = await boot({ providers: [Q1, Q2] });
    const [q1, q2] = await publishAll(app, X, ['orange', 'black', 'green', 'blue', 'orange.x'], 'end', [
      app.get(Q1),
      app.get(Q2),
    ]);
    expect(q1).toEqual(['orange', 'black']);
    expect(q2).toEqual(['black', 'green']);
    const bindings = await bindingsFrom(X);
    expect(bindings.map(([, key]) => key).sort()).toEqual(['black', 'black', 'end', 'end', 'green', 'orange']);
  });
});

describe('fanout exchange and instances', () => {
  const LOGS = unique('e2e.fanout');
  const SHARED = unique('e2e.shared');

  @Injectable()
  class Broadcast {
    keys: string[] = [];
    @Subscribe(LOGS, undefined, { type: 'fanout' })
    on(payload: { key: string }) {
      this.keys.push(payload.key);
    }
  }
  @Injectable()
  class Competing {
    keys: string[] = [];
    @Subscribe(LOGS, undefined, { type: 'fanout', queue: SHARED })
    on(payload: { key: string }) {
      this.keys.push(payload.key);
    }
  }

  it('gives every running instance its own copy without a queue name, and splits a named queue between them', async () => {
    exchanges.push(LOGS);
    queues.push(SHARED);
    const a = await boot({ providers: [Broadcast, Competing] });
    const b = await boot({ providers: [Broadcast, Competing] });
    const keys = Array.from({ length: 20 }, (_, i) => `m${i}`);
    const publisher = a.get(Publisher);
    for (const key of keys) await publisher.publish(LOGS, '', { key });
    const [ca, cb] = [a.get(Competing), b.get(Competing)];
    await waitUntil(
      'every message in both broadcast handlers and once across the competing ones',
      () =>
        a.get(Broadcast).keys.length === 20 &&
        b.get(Broadcast).keys.length === 20 &&
        ca.keys.length + cb.keys.length === 20,
    );
    expect(a.get(Broadcast).keys).toEqual(keys);
    expect(b.get(Broadcast).keys).toEqual(keys);
    expect([...ca.keys, ...cb.keys].sort()).toEqual([...keys].sort());
    expect(ca.keys.length).toBeGreaterThan(0);
    expect(cb.keys.length).toBeGreaterThan(0);
  });
});

describe('headers exchange', () => {
  const X = unique('e2e.headers');

  @Injectable()
  class AllOf {
    seen: string[] = [];
    @Subscribe(X, undefined, { type: 'headers', headers: { format: 'pdf', type: 'report' }, match: 'all' })
    on(payload: { id: string }) {
      this.seen.push(payload.id);
    }
  }
  @Injectable()
  class AnyOf {
    seen: string[] = [];
    @Subscribe(X, undefined, { type: 'headers', headers: { format: 'pdf', type: 'report' }, match: 'any' })
    on(payload: { id: string }) {
      this.seen.push(payload.id);
    }
  }

  it('matches all or any of the bound headers', async () => {
    exchanges.push(X);
    const app = await boot({ providers: [AllOf, AnyOf] });
    const publisher = app.get(Publisher);
    const send = (id: string, headers: Record<string, unknown>) => publisher.publish(X, '', { id }, { headers });
    await send('both', { format: 'pdf', type: 'report' });
    await send('format-only', { format: 'pdf' });
    await send('wrong-value', { format: 'zip', type: 'log' });
    await send('none', {});
    await send('end', { format: 'pdf', type: 'report' });
    await waitUntil('the end marker', () => app.get(AllOf).seen.includes('end') && app.get(AnyOf).seen.includes('end'));
    expect(app.get(AllOf).seen).toEqual(['both', 'end']);
    expect(app.get(AnyOf).seen).toEqual(['both', 'format-only', 'end']);
  });
});

describe('runtime subscriptions', () => {
  it('subscribe with keys known only at runtime, and cancel for good', async () => {
    const X = unique('e2e.runtime');
    exchanges.push(X);
    const app = await boot({});
    const registry = app.get(ConsumerRegistry);
    const seen: string[] = [];
    const handle = await registry.subscribe(X, ['kern.*', '*.critical'], (_: unknown, ctx: WarrenContext) => {
      seen.push(ctx.routingKey);
    });
    expect(handle.active).toBe(true);
    expect(handle.queue).toMatch(/^amq\.gen-/);
    const publisher = app.get(Publisher);
    for (const key of ['kern.info', 'cron.critical', 'cron.info', 'kern.critical']) await publisher.publish(X, key, {});
    await waitUntil('three matching messages', () => seen.length === 3);
    expect(seen).toEqual(['kern.info', 'cron.critical', 'kern.critical']);
    const queue = handle.queue;
    await handle.cancel();
    expect(handle.active).toBe(false);
    expect(registry.list()).toEqual([]);
    // The temporary queue went with its consumer: nothing is left bound to the exchange.
    await waitUntil('the temporary queue to be gone', async () => (await bindingsFrom(X)).every(([q]) => q !== queue));
  });

  it('applies the same checks as the decorators', async () => {
    const X = unique('e2e.runtime');
    exchanges.push(X);
    const app = await boot({});
    await expect(app.get(ConsumerRegistry).subscribe(X, 'a.b*', () => undefined)).rejects.toThrow(
      `subscribe(${X}): invalid binding key "a.b*" on topic exchange "${X}"`,
    );
  });

  it('names ConsumerRegistry.subscribe() or consume() when an argument is wrong', async () => {
    const app = await boot({});
    const registry = app.get(ConsumerRegistry);
    await expect(registry.subscribe('', 'k', () => undefined, { label: 'audit' })).rejects.toThrow(
      new WarrenDecoratorError('ConsumerRegistry.subscribe() on audit: exchange must be a non-empty string, got ""'),
    );
    await expect(registry.consume('tasks', () => undefined, { prefetch: -1 })).rejects.toThrow(
      new WarrenDecoratorError(
        'ConsumerRegistry.consume() on consume(tasks): prefetch must be an integer from 1 to 65535, got -1',
      ),
    );
  });
});

describe('boot errors name what is at fault', () => {
  it('refuses an exchange declared with two types, naming both methods', async () => {
    const X = unique('e2e.conflict');
    @Injectable()
    class OrdersService {
      @Subscribe(X, 'order.placed')
      onPlaced() {}
    }
    @Injectable()
    class AuditService {
      @Subscribe(X, undefined, { type: 'fanout' })
      onAll() {}
    }
    await expect(bootApp({ providers: [OrdersService, AuditService] })).rejects.toThrow(
      new TopologyError(
        `Exchange "${X}" is declared differently by OrdersService.onPlaced and AuditService.onAll: type "topic" vs "fanout"`,
      ),
    );
    // Nothing reached the broker: the check runs before any declaration.
    await expect(management(`/api/exchanges/%2F/${X}`)).rejects.toThrow(/404/);
  });

  it('refuses prefetch 0 (no limit), from the decorator or the module, naming the handler', async () => {
    const Q = unique('e2e.unlimited');
    const because = 'prefetch 0 is no limit at all (the broker would send the whole queue to this consumer at once)';
    expect(() => {
      class Unlimited {
        @Consume(Q, { prefetch: 0 })
        on() {}
      }
      return Unlimited;
    }).toThrow(new WarrenDecoratorError(`@Consume() on Unlimited.on: ${because}; give a limit from 1 to 65535`));
    @Injectable()
    class Worker {
      @Consume(Q)
      onTask() {}
    }
    await expect(bootApp({ providers: [Worker] }, { prefetch: 0 })).rejects.toThrow(
      new TopologyError(`Worker.onTask: ${because}; give a limit from 1 to 65535`),
    );
    await expect(management(`/api/queues/%2F/${Q}`)).rejects.toThrow(/404/);
  });

  it('refuses a queue declared with different durability, naming both methods', async () => {
    const Q = unique('e2e.conflict-q');
    @Injectable()
    class Worker {
      @Consume(Q)
      onTask() {}
    }
    @Injectable()
    class Reporter {
      @Subscribe(unique('e2e.x'), 'k', { queue: Q, durable: false })
      onReport() {}
    }
    await expect(bootApp({ providers: [Worker, Reporter] })).rejects.toThrow(
      `Queue "${Q}" is declared differently by Worker.onTask and Reporter.onReport: durable true vs false`,
    );
  });

  it('refuses a bad binding pattern, naming the method', async () => {
    const X = unique('e2e.pattern');
    @Injectable()
    class Logs {
      @Subscribe(X, ['kern.*', 'cron.crit#'])
      onLog() {}
    }
    await expect(bootApp({ providers: [Logs] })).rejects.toThrow(
      `Logs.onLog: invalid binding key "cron.crit#" on topic exchange "${X}": "crit#" mixes a wildcard with other characters`,
    );
  });

  it('turns PRECONDITION_FAILED into an error naming the method, the queue and what differs', async () => {
    const Q = unique('e2e.existing');
    queues.push(Q);
    const connection = await amqplib.connect(brokerUrl());
    await (await connection.createChannel()).assertQueue(Q, { durable: false });
    await connection.close();
    @Injectable()
    class Worker {
      @Consume(Q)
      onTask() {}
    }
    const error = await bootApp({ providers: [Worker] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TopologyError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^Worker\\.onTask: the broker refused the declaration of queue "${Q.replace('.', '\\.')}": .*PRECONDITION_FAILED - inequivalent arg 'durable'`,
      ),
    );
  });

  it('refuses wrong decorator arguments when the class is defined', () => {
    expect(() => {
      class Bad {
        @Subscribe('', 'x')
        on() {}
      }
      return Bad;
    }).toThrow(new WarrenDecoratorError('@Subscribe() on Bad.on: exchange must be a non-empty string, got ""'));
    expect(() => {
      class Worse {
        @Consume('tasks', { prefetch: -1 })
        on() {}
      }
      return Worse;
    }).toThrow('@Consume() on Worse.on: prefetch must be an integer from 1 to 65535, got -1');
  });

  it('fails with the host named and the password hidden when the credentials are wrong', async () => {
    const url = new URL(brokerUrl());
    url.username = 'guest';
    url.password = 'not-the-password';
    const moduleRef = Test.createTestingModule({
      imports: [WarrenModule.forRoot({ url: url.toString(), connectTimeoutMs: 5000 })],
    });
    const error = await moduleRef.compile().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WarrenConnectionError);
    expect((error as Error).message).toContain(`amqp://127.0.0.1:${url.port}/`);
    expect((error as Error).message).toMatch(/ACCESS.REFUSED/);
    expect((error as Error).message).not.toContain('not-the-password');
  });

  it('fails within its connect timeout when no broker listens, naming the host', async () => {
    const port = await freePort();
    const moduleRef = Test.createTestingModule({
      imports: [
        WarrenModule.forRoot({
          url: `amqp://user:hunter2@127.0.0.1:${port}`,
          connectTimeoutMs: 1500,
          reconnectDelayMs: 200,
        }),
      ],
    });
    const error = await moduleRef.compile().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WarrenConnectionError);
    expect((error as Error).message).toContain(
      `Cannot connect to RabbitMQ at amqp://127.0.0.1:${port}/ within 1500 ms`,
    );
    expect((error as Error).message).not.toContain('hunter2');
  });
});

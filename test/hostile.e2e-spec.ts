import { Injectable, type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import amqplib, { type ChannelModel } from 'amqplib';
import {
  Consume,
  Ctx,
  FAILURE_HEADERS,
  Header,
  Publisher,
  PublishError,
  type PublishOptions,
  RpcClient,
  RpcHandler,
  RpcRemoteError,
  TopologyError,
  UnroutableError,
  type WarrenContext,
  WarrenConnection,
  WarrenModule,
} from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, management, nextMessage, unique, waitUntil } from './support/broker.js';
import { deepTable, field, RawAmqpPublisher, rawProperties, table } from './support/raw-amqp.js';

// What a hostile or careless sender does to an app: each input is sent from outside Warren (a
// raw AMQP client written from the spec, or plain amqplib) to the real broker.
const INBOX = unique('e2e.hostile.inbox');
const ECHO = unique('e2e.hostile.echo');
const BIG = unique('e2e.hostile.big-headers');
const SLOW = unique('e2e.hostile.slow');
const WEIRD = unique('e2e.hostile.weird-errors');
const LARGE_REPLY = unique('e2e.hostile.large-reply');
const DATED = unique('e2e.hostile.dated');
const MAX_BYTES = 1024 * 1024;

/** Settles with the promise's outcome, or 'pending' if it has not within `ms`: a hang is a failure. */
async function outcome(promise: Promise<unknown>, ms = 3000): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise((resolve) => (timer = setTimeout(() => resolve('pending'), ms)));
  try {
    return await Promise.race([
      promise.then(
        (v) => ({ resolved: v }),
        (e: unknown) => e,
      ),
      pending,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

@Injectable()
class Handlers {
  received: unknown[] = [];

  @Consume(INBOX)
  onInbox(payload: unknown) {
    this.received.push(payload);
  }

  @RpcHandler(ECHO, { durable: false })
  echo(n: number) {
    return n;
  }

  @RpcHandler(SLOW, { durable: false })
  async slow(n: number) {
    await new Promise((r) => setTimeout(r, 300));
    return n;
  }

  @RpcHandler(WEIRD, { durable: false })
  weird(kind: string) {
    if (kind === 'getter') {
      throw Object.defineProperty({}, 'message', {
        get() {
          throw new Error('no message for you');
        },
      });
    }
    // A Proxy whose every trap throws.
    throw new Proxy(
      {},
      {
        get: () => {
          throw new Error('trap');
        },
        getPrototypeOf: () => {
          throw new Error('trap');
        },
        has: () => {
          throw new Error('trap');
        },
        ownKeys: () => {
          throw new Error('trap');
        },
      },
    );
  }

  @RpcHandler(LARGE_REPLY, { durable: false })
  largeReply(bytes: number) {
    return 'x'.repeat(bytes);
  }

  dated: { headers: Record<string, unknown>; at: unknown; timestamp: Date | undefined }[] = [];

  @Consume(DATED, { durable: false })
  onDated(@Header('at') at: unknown, @Header() headers: Record<string, unknown>, @Ctx() ctx: WarrenContext) {
    this.dated.push({ headers, at, timestamp: ctx.timestamp });
  }

  handledBig: number[] = [];

  @Consume(BIG, { failure: { retryDelays: [200] } })
  onBig(payload: { n: number; fail?: boolean }) {
    if (payload.fail) throw new Error(`cannot handle ${payload.n}`);
    this.handledBig.push(payload.n);
  }
}

describe('hostile input', () => {
  let app: INestApplicationContext;
  let handlers: Handlers;
  let connection: ChannelModel;
  let raw: RawAmqpPublisher;

  beforeAll(async () => {
    app = await bootApp({ providers: [Handlers] }, { maxMessageBytes: MAX_BYTES });
    handlers = app.get(Handlers);
    connection = await amqplib.connect(brokerUrl());
    raw = await RawAmqpPublisher.connect(brokerUrl());
  });

  afterAll(async () => {
    await raw?.close();
    await app?.close();
    await deleteTopology({
      queues: [INBOX, `${INBOX}.dlq`, ECHO, BIG, `${BIG}.dlq`, SLOW, WEIRD, LARGE_REPLY, DATED].flatMap((q) => [
        q,
        `${q}.dlq`,
      ]),
    });
    await connection?.close();
  });

  it('a header table nested 10 000 deep is dead-lettered as poison; the connection and the RPC handler on it go on', async () => {
    const warren = app.get(WarrenConnection);
    const generation = warren.connectionGeneration('consume');
    const headers = deepTable('evil', 10_000);
    expect(headers.length).toBeLessThan(131_072 - 1000);
    const sent = await raw.publish(
      '',
      INBOX,
      Buffer.from('{"id":1}'),
      rawProperties({ contentType: 'application/json', headers, messageId: 'deep-1' }),
    );
    expect(sent).toBe('ok');

    const rpc = app.get(RpcClient);
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => rpc.call(ECHO, i, { timeout: 5000 })));
    expect(replies).toEqual(Array.from({ length: 20 }, (_, i) => i));

    const dead = await nextMessage(connection, `${INBOX}.dlq`);
    expect(dead.properties.messageId).toBe('deep-1');
    expect(dead.properties.headers?.[FAILURE_HEADERS.reason]).toBe('poison');
    expect(String(dead.properties.headers?.[FAILURE_HEADERS.errorMessage])).toMatch(
      /header "evil".*nested deeper than/,
    );
    expect(dead.content.toString()).toBe('{"id":1}');
    expect(handlers.received).toEqual([]);
    expect(warren.connectionGeneration('consume')).toBe(generation);
  });

  it('a failing message with over 64 KiB of headers is dead-lettered without them; the messages behind it are handled', async () => {
    // 20 headers of 4 KB: 80 KB, which the broker carries (frame_max 128 KB) but amqplib cannot
    // encode again (its 64 KiB header buffer).
    const big = table(Array.from({ length: 20 }, (_, i) => [`h${i}`, field.string('x'.repeat(4000))]));
    for (let n = 1; n <= 20; n++) {
      const body = Buffer.from(JSON.stringify({ n, fail: true }));
      await raw.publish(
        '',
        BIG,
        body,
        rawProperties({ contentType: 'application/json', headers: big, messageId: `big-${n}` }),
      );
    }
    for (let n = 21; n <= 23; n++) {
      await raw.publish(
        '',
        BIG,
        Buffer.from(JSON.stringify({ n })),
        rawProperties({ contentType: 'application/json' }),
      );
    }
    await waitUntil('the 3 normal messages handled', () => handlers.handledBig.length === 3);
    expect(handlers.handledBig.sort()).toEqual([21, 22, 23]);
    const dead = await nextMessage(connection, `${BIG}.dlq`);
    const headers = dead.properties.headers ?? {};
    expect(dead.properties.messageId).toMatch(/^big-/);
    expect(headers.h0).toBeUndefined();
    expect(String(headers[FAILURE_HEADERS.droppedHeaders])).toMatch(/over the 65536 bytes amqplib can send/);
    expect(headers[FAILURE_HEADERS.errorMessage]).toMatch(/^cannot handle \d+$/);
    expect(headers[FAILURE_HEADERS.queue]).toBe(BIG);
    await waitUntil('all 20 dead-lettered', async () => {
      const ch = await connection.createChannel();
      try {
        return (await ch.checkQueue(`${BIG}.dlq`)).messageCount === 19;
      } finally {
        await ch.close();
      }
    });
  });

  it.each([
    ['a header key over 255 bytes', { headers: { ['k'.repeat(256)]: 1 } }, /headers has a key of 256 bytes/],
    ['a header value -Infinity', { headers: { n: -Infinity } }, /headers\.n is -Infinity/],
    ['a header value -1e19', { headers: { n: -1e19 } }, /headers\.n is -10000000000000000000, below the 64-bit/],
    ['over 64 KiB of headers', { headers: { big: 'x'.repeat(70_000) } }, /encode to 70\d+ bytes, over the 65536/],
    ["an { '!': ... } value", { headers: { t: { '!': 'nonsense', value: 1 } } }, /headers\.t has a "!" key/],
    ['priority 300', { priority: 300 }, /priority must be an integer from 0 to 255/],
    ['a messageId over 255 characters', { messageId: 'm'.repeat(256) }, /messageId is 256 bytes/],
    ['a type over 255 characters', { type: 't'.repeat(256) }, /type is 256 bytes/],
    ['expiration -1', { expiration: -1 }, /expiration must be a whole number of milliseconds from 0/],
    ['expiration 1.5', { expiration: 1.5 }, /expiration must be a whole number/],
    ['headers nested in a cycle', { headers: cyclic() }, /nested deeper than 64 levels/],
  ])('a publish with %s is refused at once with a PublishError naming it', async (_, options, reason) => {
    const publisher = app.get(Publisher);
    const result = await outcome(publisher.publish('', INBOX, { x: 1 }, options as PublishOptions));
    expect(result).toBeInstanceOf(PublishError);
    expect((result as Error).message).toMatch(/^Cannot publish to queue "e2e\.hostile\.inbox/);
    expect((result as Error).message).toMatch(reason);
    expect(publisher.buffered).toBe(0);
    // An RPC request goes through the same checks.
    if ('headers' in options) {
      const rpc = await outcome(app.get(RpcClient).call(ECHO, 1, { headers: options.headers }));
      expect(rpc).toBeInstanceOf(PublishError);
      expect((rpc as Error).message).toMatch(reason);
    }
  });

  it('AMQP timestamps reach the handler as Dates, at any depth, and so does a Date header Warren published', async () => {
    handlers.dated = [];
    const at = 1_767_225_600n; // 2026-01-01T00:00:00Z
    const headers = table([
      ['at', field.timestamp(at)],
      ['nested', field.table([['when', field.timestamp(at + 60n)]])],
      ['list', field.array([field.timestamp(at + 120n), field.int(7)])],
      ['plain', field.int(1)],
    ]);
    await raw.publish(
      '',
      DATED,
      Buffer.from('{}'),
      rawProperties({ contentType: 'application/json', headers, timestamp: at }),
    );
    await app.get(Publisher).sendToQueue(DATED, {}, { headers: { at: new Date('2026-01-01T00:02:03.456Z') } });
    await waitUntil('both messages handled', () => handlers.dated.length === 2);

    const [fromRaw, fromWarren] = handlers.dated;
    const second = (s: bigint) => new Date(Number(s) * 1000);
    expect(fromRaw.at).toEqual(second(at));
    expect(fromRaw.headers).toEqual({
      at: second(at),
      nested: { when: second(at + 60n) },
      list: [second(at + 120n), 7],
      plain: 1,
    });
    expect(fromRaw.timestamp).toEqual(second(at));
    // Whole seconds: AMQP's timestamp has no milliseconds.
    expect(fromWarren.at).toEqual(new Date('2026-01-01T00:02:03Z'));
    expect(fromWarren.timestamp).toBeInstanceOf(Date);
  });

  it('a mandatory publish no queue takes rejects with an UnroutableError naming the exchange and routing key', async () => {
    const publisher = app.get(Publisher);
    const exchange = unique('e2e.hostile.unbound');
    const ch = await connection.createChannel();
    await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    try {
      handlers.received = [];
      const missing = unique('e2e.hostile.no-such-queue');
      const results = await Promise.all([
        outcome(publisher.sendToQueue(missing, { n: 1 }, { mandatory: true })),
        outcome(publisher.publish(exchange, 'order.nowhere', { n: 2 }, { mandatory: true })),
        outcome(publisher.sendToQueue(INBOX, { n: 3 }, { mandatory: true })),
        // The default: the broker drops what no queue takes, and the publish resolves.
        outcome(publisher.publish(exchange, 'order.nowhere', { n: 4 })),
      ]);
      expect(results[0]).toBeInstanceOf(UnroutableError);
      expect(results[0]).toBeInstanceOf(PublishError);
      expect((results[0] as Error).message).toBe(
        `Cannot publish to queue "${missing}": the broker returned it unroutable (312 NO_ROUTE): no queue of that name exists`,
      );
      expect(results[1]).toBeInstanceOf(UnroutableError);
      expect(results[1]).toMatchObject({ exchange, routingKey: 'order.nowhere', reply: '312 NO_ROUTE' });
      expect((results[1] as Error).message).toMatch(
        /^Cannot publish to exchange "e2e\.hostile\.unbound\.[0-9a-f]+" with routing key "order\.nowhere": the broker returned it unroutable \(312 NO_ROUTE\): no queue is bound/,
      );
      expect(results[2]).toEqual({ resolved: undefined });
      expect(results[3]).toEqual({ resolved: undefined });
      await waitUntil('the routable one handled', () => handlers.received.length === 1);
      expect(handlers.received).toEqual([{ n: 3 }]);
    } finally {
      await ch.deleteExchange(exchange);
      await ch.close();
    }
  });

  it('an exchange name over 255 bytes is refused at once', async () => {
    const result = await outcome(app.get(Publisher).publish('x'.repeat(256), 'k', {}));
    expect(result).toBeInstanceOf(PublishError);
    expect((result as Error).message).toMatch(/exchange name is 256 bytes, over AMQP's limit of 255/);
  });

  it('a bad RPC timeout fails that call at once and never reaches the calls sharing its channel', async () => {
    const rpc = app.get(RpcClient);
    const others = Array.from({ length: 10 }, (_, i) => rpc.call(SLOW, i, { timeout: 10_000 }));
    for (const timeout of [-1, 0, NaN, 'soon' as unknown as number]) {
      const result = await outcome(rpc.call(SLOW, 99, { timeout }));
      expect(result).toBeInstanceOf(PublishError);
      expect((result as Error).message).toMatch(/timeout must be a positive number of milliseconds/);
    }
    // A fractional timeout is rounded up; one past what a timer can wait is capped instead of firing at once.
    const fractional = rpc.call(SLOW, 100, { timeout: 1000.5 });
    const abort = new AbortController();
    const huge = rpc.call(SLOW, 101, { timeout: 3e9, signal: abort.signal });
    expect(await Promise.all(others)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(await fractional).toBe(100);
    expect(await huge).toBe(101);
    abort.abort();
  });

  it.each(['getter', 'proxy'])(
    'an RPC handler that throws an error that cannot be described (%s) still answers',
    async (kind) => {
      const result = await outcome(app.get(RpcClient).call(WEIRD, kind, { timeout: 5000 }));
      expect(result).toBeInstanceOf(RpcRemoteError);
      // Nest's exception handling meets the Proxy first, and its traps' error is what is thrown on.
      expect((result as RpcRemoteError).remoteMessage).toMatch(kind === 'getter' ? /cannot be described/ : /trap/);
    },
  );

  it('an RPC reply over maxMessageBytes reaches the caller as an error reply saying so', async () => {
    const result = await outcome(app.get(RpcClient).call(LARGE_REPLY, MAX_BYTES + 10, { timeout: 5000 }));
    expect(result).toBeInstanceOf(RpcRemoteError);
    expect((result as RpcRemoteError).remoteName).toBe('RpcReplyTooLargeError');
    expect((result as Error).message).toMatch(
      /the reply is 1048588 bytes, over the limit of 1048576 \(maxMessageBytes\)/,
    );
    // And a request over it is refused before it is sent.
    const request = await outcome(app.get(RpcClient).call(LARGE_REPLY, 'x'.repeat(MAX_BYTES)));
    expect(request).toBeInstanceOf(PublishError);
    expect((request as Error).message).toMatch(/over the limit of 1048576 \(maxMessageBytes\)/);
  });

  it('a JSON body with an escaped __proto__ or a constructor.prototype key reaches the handler without them', async () => {
    handlers.received = [];
    const body =
      '{"id":7,"\\u005f_proto__":{"polluted":1},"nested":{"__proto__":{"polluted":2}},"constructor":{"prototype":{"polluted":3}}}';
    await raw.publish('', INBOX, Buffer.from(body), rawProperties({ contentType: 'application/json' }));
    await waitUntil('the message handled', () => handlers.received.length === 1);
    const payload = handlers.received[0] as Record<string, unknown>;
    expect(Object.keys(payload).sort()).toEqual(['id', 'nested']);
    expect(Object.keys(payload.nested as object)).toEqual([]);
    // What a naive deep merge in a handler would do with it.
    const merge = (target: Record<string, unknown>, source: Record<string, unknown>) => {
      for (const key of Object.keys(source)) {
        const value = source[key];
        if (value && typeof value === 'object')
          merge((target[key] ??= {}) as Record<string, unknown>, value as Record<string, unknown>);
        else target[key] = value;
      }
    };
    merge({}, payload);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

function cyclic(): Record<string, unknown> {
  const a: Record<string, unknown> = {};
  a.self = a;
  return a;
}

describe('a failed boot', () => {
  const TAKEN = unique('e2e.hostile.taken');

  @Injectable()
  class Conflicting {
    @Consume(TAKEN)
    onTaken() {}
  }

  const FINE = unique('e2e.hostile.fine');

  @Injectable()
  class ConflictingOnNamed {
    @Consume(TAKEN, { connection: 'audit' })
    onTaken() {}
  }

  @Injectable()
  class FineOnDefault {
    @Consume(FINE, { durable: false })
    onFine() {}
  }

  afterAll(async () => {
    await deleteTopology({ queues: [TAKEN, `${TAKEN}.dlq`, FINE, `${FINE}.dlq`] });
  });

  async function takeTheQueue() {
    // The queue exists with other arguments: the boot fails with PRECONDITION_FAILED.
    const setup = await amqplib.connect(brokerUrl());
    const ch = await setup.createChannel();
    await ch.assertQueue(TAKEN, { arguments: { 'x-max-length': 1 } });
    await setup.close();
  }

  it('closes the connections it opened, also with abortOnError: false', async () => {
    await takeTheQueue();
    const connectionName = unique('failed-boot');
    @Module({
      imports: [WarrenModule.forRoot({ url: brokerUrl(), connectionName, connectTimeoutMs: 10_000 })],
      providers: [Conflicting],
    })
    class FailingApp {}
    // createApplicationContext() runs the boot; with abortOnError: false it rejects instead of exiting.
    const booted = await NestFactory.createApplicationContext(FailingApp, { abortOnError: false, logger: false }).then(
      () => 'booted',
      (e: Error) => e,
    );
    expect(booted).toBeInstanceOf(TopologyError);
    await expectNoConnectionsNamed(connectionName);
  });

  it('closes the connections of every Warren connection of the app, when a named one fails', async () => {
    await takeTheQueue();
    const connectionName = unique('failed-boot-named');
    @Module({
      imports: [
        WarrenModule.forRoot({
          url: brokerUrl(),
          connectionName: `${connectionName}-default`,
          connectTimeoutMs: 10_000,
        }),
        WarrenModule.forRoot({
          connection: 'audit',
          url: brokerUrl(),
          connectionName: `${connectionName}-audit`,
          connectTimeoutMs: 10_000,
        }),
      ],
      providers: [FineOnDefault, ConflictingOnNamed],
    })
    class FailingApp {}
    const booted = await NestFactory.createApplicationContext(FailingApp, { abortOnError: false, logger: false }).then(
      () => 'booted',
      (e: Error) => e,
    );
    expect(booted).toBeInstanceOf(TopologyError);
    expect((booted as Error).message).toMatch(/^ConflictingOnNamed\.onTaken: /);
    await expectNoConnectionsNamed(connectionName);
  });
});

async function expectNoConnectionsNamed(connectionName: string): Promise<void> {
  const ours = async () =>
    (await management<{ client_properties: { connection_name?: string } }[]>('/api/connections')).filter((c) =>
      c.client_properties.connection_name?.startsWith(connectionName),
    ).length;
  // The management API lists connections a little late: a marker connection opened after the
  // failed boot shows when the listing has caught up, and the app's would be listed by then.
  const marker = unique('marker');
  const late = await amqplib.connect(brokerUrl(), { clientProperties: { connection_name: marker } });
  try {
    await waitUntil('the marker connection listed', async () =>
      (await management<{ client_properties: { connection_name?: string } }[]>('/api/connections')).some(
        (c) => c.client_properties.connection_name === marker,
      ),
    );
    expect(await ours()).toBe(0);
  } finally {
    await late.close();
  }
}

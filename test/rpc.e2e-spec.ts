import { ConsoleLogger, Injectable, type INestApplicationContext, Logger, type LoggerService } from '@nestjs/common';
import amqplib, { type ChannelModel } from 'amqplib';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  defineRpc,
  getWarrenToken,
  PublishError,
  RpcChannelLostError,
  RpcClient,
  RpcHandler,
  RpcNoRouteError,
  RpcRemoteError,
  RpcTimeoutError,
} from 'nestjs-warren';
import { fib } from '../src/tutorials/rpc.js';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';
import { closeConnection } from './support/connections.js';
import { logged } from './support/logs.js';

const Fibonacci = defineRpc<number, number>(unique('e2e.rpc.fib'));
const ECHO = unique('e2e.rpc.echo');
const FAILING = unique('e2e.rpc.failing');
const FAILING_WITH_STACK = unique('e2e.rpc.failing-stack');
const SILENT = unique('e2e.rpc.silent'); // declared, never consumed: calls to it time out

class PaymentDeclined extends Error {
  code = 'CARD_DECLINED';
  override name = 'PaymentDeclined';
}

@Injectable()
class Servers {
  handled = 0;
  echoed: unknown[] = [];

  @RpcHandler(Fibonacci, { durable: false })
  async fibonacci(n: number) {
    this.handled++;
    // Leaves other instances room to take requests while this one is busy.
    await sleep(1);
    return fib(Number(n));
  }

  @RpcHandler(ECHO, { durable: false })
  echo(payload: unknown) {
    this.echoed.push(payload);
    return payload;
  }

  @RpcHandler(FAILING, { durable: false })
  failing(): never {
    throw new PaymentDeclined('card 4242 declined');
  }

  @RpcHandler(FAILING_WITH_STACK, { durable: false, exposeErrorStack: true })
  failingWithStack(): never {
    throw new TypeError('bad input');
  }
}

const apps: INestApplicationContext[] = [];
const connections: ChannelModel[] = [];

async function server(options = {}) {
  const app = await bootApp(
    { providers: [Servers] },
    { topology: { queues: [{ name: SILENT, durable: false }] }, ...options },
  );
  apps.push(app);
  return app;
}

async function raw(): Promise<ChannelModel> {
  const connection = await amqplib.connect(brokerUrl());
  connections.push(connection);
  return connection;
}

afterAll(async () => {
  for (const app of apps) await app.close();
  for (const c of connections) await c.close().catch(() => undefined);
  await deleteTopology({
    queues: [Fibonacci.queue, ECHO, FAILING, FAILING_WITH_STACK, SILENT].flatMap((q) => [q, `${q}.dlq`]),
  });
});

describe.each(['direct-reply-to', 'exclusive'] as const)('RPC with %s replies', (replyQueue) => {
  let client: RpcClient;
  beforeAll(async () => {
    if (apps.length === 0) await server();
    const app = await bootApp({}, { rpc: { replyQueue }, connectionName: `rpc-client-${replyQueue}` });
    apps.push(app);
    client = app.get(RpcClient);
  });

  it('computes fib(n) for n = 0..30', async () => {
    for (let n = 0; n <= 30; n++) {
      await expect(client.call(Fibonacci, n)).resolves.toBe(fib(n));
    }
  });

  it('resolves 1 000 concurrent calls through one client, each with its own answer', async () => {
    const ns = Array.from({ length: 1000 }, (_, i) => i % 40);
    const replies = await Promise.all(ns.map((n) => client.call(Fibonacci, n, { timeout: 30_000 })));
    expect(replies).toEqual(ns.map(fib));
    expect(client.pendingCalls).toBe(0);
  });

  it('shares the load between two server instances', async () => {
    const second = await server();
    const [a, b] = [apps[0].get(Servers), second.get(Servers)];
    const [beforeA, beforeB] = [a.handled, b.handled];
    const ns = Array.from({ length: 200 }, (_, i) => i % 30);
    await expect(Promise.all(ns.map((n) => client.call(Fibonacci, n)))).resolves.toEqual(ns.map(fib));
    expect(a.handled - beforeA).toBeGreaterThan(0);
    expect(b.handled - beforeB).toBeGreaterThan(0);
    expect(a.handled - beforeA + (b.handled - beforeB)).toBe(200);
    apps.splice(apps.indexOf(second), 1);
    await second.close();
  });

  it.each([
    ['0', 0],
    ['false', false],
    ['the empty string', ''],
    ['null', null],
    ['a string', 'hello "rabbit"'],
    ['a nested object', { order: { id: 7, lines: [{ sku: 'a', qty: 0 }, null], paid: false } }],
  ])('round-trips %s unchanged as payload and as reply', async (_name, value) => {
    const servers = apps[0].get(Servers);
    const before = servers.echoed.length;
    await expect(client.call(ECHO, value)).resolves.toEqual(value);
    expect(servers.echoed[before]).toEqual(value);
  });

  it('rejects with RpcRemoteError carrying the remote name, message and code, without a stack', async () => {
    const error = await client.call(FAILING, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcRemoteError);
    expect(error).toMatchObject({
      remoteName: 'PaymentDeclined',
      remoteMessage: 'card 4242 declined',
      code: 'CARD_DECLINED',
    });
    expect((error as RpcRemoteError).remoteStack).toBeUndefined();
    // The server logs it too, naming the handler, with the reply it sent.
    expect(logged('warn')).toContain(
      'Servers.failing: handler threw, sending an error reply: {"name":"PaymentDeclined","message":"card 4242 declined","code":"CARD_DECLINED"}',
    );
  });

  it('sends the stack only where the handler enables it', async () => {
    const error = (await client.call(FAILING_WITH_STACK, {}).catch((e: unknown) => e)) as RpcRemoteError;
    expect(error).toBeInstanceOf(RpcRemoteError);
    expect(error.remoteName).toBe('TypeError');
    expect(error.remoteStack).toContain('failingWithStack');
  });

  it('rejects with RpcTimeoutError naming the queue and the timeout', async () => {
    const error = await client.call(SILENT, 1, { timeout: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcTimeoutError);
    expect((error as Error).message).toBe(`RPC to "${SILENT}" got no reply within 300 ms`);
    expect(client.pendingCalls).toBe(0);
  });

  it('rejects with RpcNoRouteError at once when no queue can take the request', async () => {
    // The call's own timeout is far beyond the test's: only the broker's return can end it in time.
    const error = await client.call(unique('e2e.rpc.nobody'), 1, { timeout: 120_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcNoRouteError);
    expect(client.pendingCalls).toBe(0);
  }, 10_000);

  it("rejects a request to an unknown exchange with the broker's reason at once, and serves the next call", async () => {
    const missing = unique('e2e.rpc.no-such-exchange');
    const ToNowhere = defineRpc<number, number>(unique('e2e.rpc.nowhere'), { exchange: missing, routingKey: 'k' });
    const error = await client.call(ToNowhere, 1, { timeout: 120_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishError);
    expect((error as Error).message).toBe(
      `RPC to "${ToNowhere.queue}": the broker refused the request: Channel closed by server: 404 (NOT-FOUND) ` +
        `with message "NOT_FOUND - no exchange '${missing}' in vhost '/'"`,
    );
    expect(client.pendingCalls).toBe(0);
    // The channel the broker closed is reopened: calls go through again.
    await expect(client.call(Fibonacci, 10, { timeout: 20_000 })).resolves.toBe(fib(10));
  }, 10_000);

  it('rejects with the abort reason when the signal fires', async () => {
    const controller = new AbortController();
    const call = client.call(SILENT, 1, { timeout: 60_000, signal: controller.signal });
    controller.abort(new Error('user gave up'));
    await expect(call).rejects.toThrow('user gave up');
    expect(client.pendingCalls).toBe(0);
  });
});

describe('RPC requests over maxMessageBytes', () => {
  let client: RpcClient;
  beforeAll(async () => {
    if (apps.length === 0) await server();
    const app = await bootApp({}, { maxMessageBytes: 1024, connectionName: 'rpc-small-client' });
    apps.push(app);
    client = app.get(RpcClient);
  });

  it('refuses a larger request with a PublishError naming the queue and the limit, and sends nothing', async () => {
    const servers = apps[0].get(Servers);
    const before = servers.echoed.length;
    const error = await client.call(ECHO, 'x'.repeat(2000)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishError);
    expect((error as Error).message).toBe(
      `RPC to "${ECHO}": message is 2002 bytes, over the limit of 1024 (maxMessageBytes)`,
    );
    expect(client.pendingCalls).toBe(0);
    // One queue, one channel: had the large request gone out, the server would have seen it first.
    await expect(client.call(ECHO, 'small')).resolves.toBe('small');
    expect(servers.echoed.slice(before)).toEqual(['small']);
  });
});

describe('RPC replies that match no call', () => {
  let client: RpcClient;
  beforeAll(async () => {
    const app = await bootApp({}, { connectionName: 'rpc-odd-replies' });
    apps.push(app);
    client = app.get(RpcClient);
  });

  it('ignores unknown and duplicate replies, resolving the call once', async () => {
    const queue = unique('e2e.rpc.chatty');
    const ch = await (await raw()).createChannel();
    await ch.assertQueue(queue, { exclusive: true });
    await ch.consume(queue, (msg) => {
      if (!msg) return;
      const { replyTo, correlationId } = msg.properties;
      ch.sendToQueue(replyTo, Buffer.from('"not yours"'), {
        correlationId: 'someone-else',
        contentType: 'application/json',
      });
      ch.sendToQueue(replyTo, Buffer.from('"first"'), { correlationId, contentType: 'application/json' });
      ch.sendToQueue(replyTo, Buffer.from('"second"'), { correlationId, contentType: 'application/json' });
      ch.ack(msg);
    });
    const before = client.discardedReplies;
    await expect(client.call(queue, 'hi')).resolves.toBe('first');
    await waitUntil('the two stray replies', () => client.discardedReplies === before + 2);
    expect(client.pendingCalls).toBe(0);
  });

  it('ignores a reply that arrives after the call timed out', async () => {
    const queue = unique('e2e.rpc.slow');
    const ch = await (await raw()).createChannel();
    await ch.assertQueue(queue, { exclusive: true });
    let replied = false;
    await ch.consume(queue, async (msg) => {
      if (!msg) return;
      await sleep(400);
      ch.sendToQueue(msg.properties.replyTo, Buffer.from('"late"'), { correlationId: msg.properties.correlationId });
      ch.ack(msg);
      replied = true;
    });
    const before = client.discardedReplies;
    await expect(client.call(queue, 'hi', { timeout: 100 })).rejects.toBeInstanceOf(RpcTimeoutError);
    await waitUntil('the late reply', () => replied && client.discardedReplies === before + 1);
    expect(client.pendingCalls).toBe(0);
  });

  it('leaves the pending-call table empty after 10 000 timed-out calls', async () => {
    const calls = Array.from({ length: 10_000 }, (_, i) =>
      client.call(SILENT, i, { timeout: 500 }).catch((e: unknown) => e),
    );
    expect(client.pendingCalls).toBe(10_000);
    const errors = await Promise.all(calls);
    expect(errors.every((e) => e instanceof RpcTimeoutError)).toBe(true);
    expect(client.pendingCalls).toBe(0);
  });
});

describe('RPC across failures', () => {
  it('fails pending calls with RpcChannelLostError when the reply channel is lost, then works again', async () => {
    const name = unique('rpc-lost');
    const app = await bootApp({}, { connectionName: name, reconnectDelayMs: 200 });
    apps.push(app);
    const client = app.get(RpcClient);
    const call = client.call(SILENT, 1, { timeout: 60_000 });
    await waitUntil('the call to be pending', () => client.pendingCalls === 1);
    await closeConnection(`${name}:publish`);
    await expect(call).rejects.toBeInstanceOf(RpcChannelLostError);
    expect(client.pendingCalls).toBe(0);
    // The client comes back by itself on the new connection.
    await expect(client.call(Fibonacci, 20, { timeout: 20_000 })).resolves.toBe(fib(20));
  }, 40_000);

  it('resolves once when a server dies after replying but before acking', async () => {
    const queue = unique('e2e.rpc.dying');
    const Dying = defineRpc<number, number>(queue);
    // A hand-written server that replies, then dies without acking: the broker redelivers.
    const doomedName = unique('rpc-doomed');
    const doomed = await amqplib.connect(brokerUrl(), { clientProperties: { connection_name: doomedName } });
    doomed.on('error', () => undefined); // its death below is the point
    const ch = await doomed.createChannel();
    await ch.assertQueue(queue, { durable: false });
    await ch.prefetch(1);
    await ch.consume(queue, (msg) => {
      if (!msg) return;
      ch.sendToQueue(msg.properties.replyTo, Buffer.from(String(fib(Number(msg.content)))), {
        correlationId: msg.properties.correlationId,
        contentType: 'application/json',
      });
      // The reply is out; the connection dies before any ack, as a killed process's would.
      void closeConnection(doomedName);
    });

    let redelivered = 0;
    @Injectable()
    class Survivor {
      @RpcHandler(Dying, { durable: false })
      onRequest(n: number, context: { redelivered: boolean }) {
        if (context.redelivered) redelivered++;
        return fib(n);
      }
    }
    const clientApp = await bootApp({}, { connectionName: unique('rpc-dup') });
    apps.push(clientApp);
    const client = clientApp.get(RpcClient);
    const before = client.discardedReplies;
    await expect(client.call(Dying, 25)).resolves.toBe(fib(25));
    // Only now does the second server start: it gets the redelivered request and replies again.
    apps.push(await bootApp({ providers: [Survivor] }));
    await waitUntil('the redelivered request to be served', () => redelivered === 1);
    await waitUntil('the duplicate reply to be dropped', () => client.discardedReplies === before + 1);
    expect(client.pendingCalls).toBe(0);
  });
});

describe('RPC interop with the tutorial programs of other languages', () => {
  it('answers a plain-bytes request with no content type in plain digits', async () => {
    const ch = await (await raw()).createChannel();
    const { queue: replyTo } = await ch.assertQueue('', { exclusive: true });
    const reply = new Promise<amqplib.ConsumeMessage>((resolve) => {
      void ch.consume(replyTo, (msg) => msg && resolve(msg), { noAck: true });
    });
    ch.sendToQueue(Fibonacci.queue, Buffer.from('30'), { replyTo, correlationId: 'py-1' });
    const msg = await reply;
    expect(msg.content.toString()).toBe('832040');
    expect(msg.properties.correlationId).toBe('py-1');
  });

  it('answers a request it cannot decode with an error reply at once, and dead-letters it', async () => {
    const ch = await (await raw()).createChannel();
    const { queue: replyTo } = await ch.assertQueue('', { exclusive: true });
    const reply = new Promise<amqplib.ConsumeMessage>((resolve) => {
      void ch.consume(replyTo, (msg) => msg && resolve(msg), { noAck: true });
    });
    ch.sendToQueue(Fibonacci.queue, Buffer.from('{"n": '), {
      replyTo,
      correlationId: 'broken-1',
      contentType: 'application/json',
    });
    const msg = await reply;
    expect(msg.properties.correlationId).toBe('broken-1');
    expect(msg.properties.headers?.['x-warren-error']).toBe(true);
    expect(JSON.parse(msg.content.toString())).toMatchObject({ name: 'MessageDecodeError' });
    let dead: amqplib.GetMessage | false = false;
    await waitUntil(
      'the request in the dead-letter queue',
      async () => (dead = await ch.get(`${Fibonacci.queue}.dlq`)) !== false,
    );
    expect((dead as unknown as amqplib.GetMessage).content.toString()).toBe('{"n": ');
  });

  it('lets RpcClient call a server that replies with plain text', async () => {
    const queue = unique('e2e.rpc.plain');
    const ch = await (await raw()).createChannel();
    await ch.assertQueue(queue, { exclusive: true });
    await ch.consume(queue, (msg) => {
      if (!msg) return;
      ch.sendToQueue(msg.properties.replyTo, Buffer.from(`fib=${fib(Number(msg.content))}`), {
        correlationId: msg.properties.correlationId,
      });
      ch.ack(msg);
    });
    const app = await bootApp({});
    apps.push(app);
    await expect(app.get(RpcClient).call(queue, 10)).resolves.toBe('fib=55');
  });

  it('processes and acks a request without reply_to', async () => {
    const queue = unique('e2e.rpc.noreply');
    const seen: unknown[] = [];
    @Injectable()
    class OneWay {
      @RpcHandler(queue, { durable: true })
      onRequest(payload: unknown) {
        seen.push(payload);
        return 'ignored';
      }
    }
    const app = await bootApp({ providers: [OneWay] });
    const ch = await (await raw()).createChannel();
    ch.sendToQueue(queue, Buffer.from('{"fire":"forget"}'), { contentType: 'application/json' });
    await waitUntil('the request to be handled', () => seen.length === 1);
    await app.close();
    // Had it not been acked, closing the app would have put it back in the queue.
    const { messageCount } = await ch.checkQueue(queue);
    expect(messageCount).toBe(0);
    expect(seen).toEqual([{ fire: 'forget' }]);
    // Acked means handled to the end, where the missing reply_to is noticed.
    expect(logged('warn')).toContain(
      `OneWay.onRequest: request without reply_to on queue "${queue}" processed; no reply sent`,
    );
    await deleteTopology({ queues: [queue] });
  });
});

describe('RPC on a named connection', () => {
  /** Keeps what is logged, with the context Nest passes last. */
  class RecordingLogger implements LoggerService {
    readonly warnings: { message: unknown; context: unknown }[] = [];
    log(): void {}
    error(): void {}
    warn(message: unknown, ...params: unknown[]): void {
      this.warnings.push({ message, context: params.at(-1) });
    }
  }

  it("logs under the connection's name", async () => {
    const queue = unique('e2e.rpc.named-logs');
    @Injectable()
    class Ledger {
      @RpcHandler(queue, { durable: false, connection: 'ledger' })
      post(): never {
        throw new Error('ledger closed');
      }
    }
    const app = await bootApp({ providers: [Ledger] }, { name: 'ledger', connectionName: unique('rpc-named') });
    apps.push(app);
    const logs = new RecordingLogger();
    app.useLogger(logs);
    try {
      const client = app.get<RpcClient>(getWarrenToken(RpcClient, 'ledger'));
      await expect(client.call(queue, 1)).rejects.toBeInstanceOf(RpcRemoteError);
      expect(logs.warnings).toContainEqual({
        message: expect.stringContaining('handler threw, sending an error reply'),
        context: 'Warren:ledger',
      });
    } finally {
      Logger.overrideLogger(new ConsoleLogger({ logLevels: ['error', 'warn'] }));
    }
  });
});

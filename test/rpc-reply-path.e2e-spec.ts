import { Injectable, type INestApplicationContext } from '@nestjs/common';
import amqplib from 'amqplib';
import { RpcChannelLostError, RpcClient, RpcHandler, RpcRemoteError, WarrenConnection } from 'nestjs-warren';
import { type RabbitMQ, startRabbitMQ } from 'nestjs-warren/testing';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';
import { rabbitmqctl } from './support/rabbitmqctl.js';
import { logged } from './support/logs.js';

// The way back of an RPC call. Replies the broker does not take. RabbitMQ 3.10 crashes the channel that publishes a reply to a
// direct reply-to address whose node is not running, and the crash closes the whole connection
// (541 INTERNAL_ERROR): after a node loss, the replies owed to the callers that were on that node
// took the replies to every other caller written after them down too, and those callers waited out
// their timeouts. And a reply over the broker's max_message_size closed the reply channel, the
// request acked, the caller timed out. And an exclusive reply queue deleted under the client left
// every call, in flight and later, to wait out its timeout.

const GATED = unique('e2e.reply-refused.gated');
const LARGE = unique('e2e.reply-refused.large');
const HELD = unique('e2e.reply-refused.held');

/**
 * A direct reply-to address as RabbitMQ 3.10 writes it (`amq.rabbitmq.reply-to.<pid>.<key>`, the
 * pid's node as `reply@<hash of its name>`), naming a node that is not in the cluster: what a
 * caller on a node that has since gone down leaves in its requests.
 */
function replyToOnAMissingNode(): string {
  const node = Buffer.from('reply@123456789', 'utf8');
  const nodeLength = Buffer.alloc(2);
  nodeLength.writeUInt16BE(node.length);
  // NEW_PID_EXT: the node as an ATOM_UTF8_EXT, then id, serial and creation.
  const pid = Buffer.concat([
    Buffer.from([131, 88, 118]),
    nodeLength,
    node,
    Buffer.from([0, 0, 5, 66, 0, 0, 0, 0, 107, 15, 141, 107]),
  ]);
  return `amq.rabbitmq.reply-to.${pid.toString('base64')}.${Buffer.from('a-dead-callers-key').toString('base64')}`;
}

const POISONED = 2;
const CALLS = 10;

@Injectable()
class Gated {
  private readonly waiting: (() => void)[] = [];
  arrived = 0;

  // Every request waits until all have arrived: their replies are then written together, the
  // ones to the missing node first, as after a failover.
  @RpcHandler(GATED)
  async add({ a, b }: { a: number; b: number }) {
    this.arrived++;
    await new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      if (this.waiting.length === POISONED + CALLS) for (const release of this.waiting.splice(0)) release();
    });
    return a + b;
  }
}

describe('an RPC reply the broker cannot deliver does not take the other replies with it', () => {
  let server: INestApplicationContext;
  let client: INestApplicationContext;

  beforeAll(async () => {
    server = await bootApp({ providers: [Gated] }, { reconnectDelayMs: 200 });
    client = await bootApp({});
  });

  afterAll(async () => {
    await client?.close();
    await server?.close();
    await deleteTopology({ queues: [GATED, `${GATED}.dlq`] });
  });

  it('replies to a caller on a node that is down are dropped; the calls answered beside them get their replies', async () => {
    const generation = server.get(WarrenConnection).connectionGeneration('publish');
    // A non-Warren client sends the requests of callers whose node is gone.
    const raw = await amqplib.connect(brokerUrl());
    try {
      const channel = await raw.createChannel();
      for (let i = 0; i < POISONED; i++) {
        channel.sendToQueue(GATED, Buffer.from(JSON.stringify({ a: i, b: 0 })), {
          contentType: 'application/json',
          correlationId: `dead-${i}`,
          replyTo: replyToOnAMissingNode(),
        });
      }
      const gated = server.get(Gated);
      await waitUntil('the dead callers’ requests to arrive', () => gated.arrived === POISONED);
      const rpc = client.get(RpcClient);
      const sums = await Promise.all(
        Array.from({ length: CALLS }, (_, a) => rpc.call<number>(GATED, { a, b: 1 }, { timeout: 10_000 })),
      );
      expect(sums).toEqual(Array.from({ length: CALLS }, (_, a) => a + 1));
    } finally {
      await raw.close();
    }
    // The broker did close the server's publishing connection over them, and Warren said why.
    expect(server.get(WarrenConnection).connectionGeneration('publish')).toBeGreaterThan(generation);
    expect(logged('warn').some((line) => /makes the broker close the connection \(INTERNAL_ERROR/.test(line))).toBe(
      true,
    );
  });
});

const BROKER_MAX = 64 * 1024;

@Injectable()
class Large {
  @RpcHandler(LARGE)
  reply(size: number) {
    return 'x'.repeat(size);
  }
}

@Injectable()
class Held {
  release?: () => void;

  // Answers once the test lets it: the call stays in flight while its reply queue is deleted.
  @RpcHandler(HELD)
  async echo(n: number) {
    if (n === 0) await new Promise<void>((resolve) => (this.release = resolve));
    return n;
  }
}

describe('on a private node (max_message_size 64 KiB), exclusive reply queues', () => {
  let broker: RabbitMQ;
  let app: INestApplicationContext;

  beforeAll(async () => {
    broker = await startRabbitMQ({ management: false, config: [`max_message_size = ${BROKER_MAX}`] });
    app = await bootApp(
      { providers: [Large, Held] },
      { url: broker.url, reconnectDelayMs: 200, rpc: { replyQueue: 'exclusive' } },
    );
  }, 120_000);

  afterAll(async () => {
    app?.get(Held).release?.();
    await app?.close();
    await broker?.stop();
  });

  it("reaches the caller as an error reply naming the reply's size and the broker's limit; the next call is answered", async () => {
    const rpc = app.get(RpcClient);
    const failed = await rpc.call(LARGE, BROKER_MAX + 100, { timeout: 10_000 }).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(RpcRemoteError);
    expect((failed as RpcRemoteError).remoteName).toBe('RpcReplyTooLargeError');
    expect((failed as Error).message).toMatch(
      new RegExp(`the reply is ${BROKER_MAX + 102} bytes, over the broker's max_message_size of ${BROKER_MAX}`),
    );
    expect(await rpc.call(LARGE, 10, { timeout: 10_000 })).toBe('x'.repeat(10));
  });

  it('an exclusive reply queue deleted under the client: the call in flight fails at once with RpcChannelLostError; the next gets a fresh reply queue and its reply', async () => {
    const rpc = app.get(RpcClient);
    const inFlight = rpc.call(HELD, 0, { timeout: 20_000 }).catch((err: unknown) => err);
    await waitUntil('the call to reach its handler', () => app.get(Held).release !== undefined);
    // Deleted the way an operator does; the broker cancels the client's consumer of it.
    const queues = JSON.parse(
      await rabbitmqctl(broker.nodeName!, 'list_queues', 'name', 'exclusive', '--formatter', 'json'),
    );
    const replyQueue = (queues as { name: string; exclusive: boolean }[]).find((q) => q.exclusive)!.name;
    await rabbitmqctl(broker.nodeName!, 'delete_queue', replyQueue);
    expect(await inFlight).toBeInstanceOf(RpcChannelLostError);
    app.get(Held).release!();
    expect(await rpc.call(HELD, 7, { timeout: 10_000 })).toBe(7);
  });
});

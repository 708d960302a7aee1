// The limit: amqplib written by hand the fast way, with nothing a framework adds (no per-call
// timer, no retry, no reconnect, no write coalescing). Two variants:
// - `raw` (the reference every ratio is taken against): two connections, one that publishes
//   (events, RPC requests, RPC replies) and one that consumes, as a careful hand-written service
//   would have them: RabbitMQ's flow control throttles a publishing connection, and it must not
//   hold back the consumer's acks.
// - `raw-1conn`: the same on a single connection for everything.
// Both: Nagle off (`noDelay`); a confirm channel for events that waits for `drain` when the
// socket buffer is full; prefetch-limited consumers that ack each message after its handler;
// RPC over direct reply-to with a Map of pending calls. The subscribers' queues may be given
// arguments (the cluster scenario's `x-queue-type: quorum`); the matrix's are plain durable queues.
import amqplib, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import {
  BaseAdapter,
  type BenchEvent,
  type BrokerSpec,
  handlerKey,
  handlerQueue,
  type RpcReply,
  type RpcRequest,
  serve,
} from '../harness.js';

const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
const JSON_TYPE = 'application/json';
/** Channels the boot scenario declares its queues on in parallel. */
const BOOT_LANES = 32;

export type RawConnections = 1 | 2;

export class RawAdapter extends BaseAdapter {
  readonly name: string;
  private connections: ChannelModel[] = [];
  private publisher?: ConfirmChannel;
  private client?: Channel;
  /** Set while the publishing channel's buffer is full: publishes wait for its 'drain'. */
  private drained: Promise<void> | null = null;
  private readonly pending = new Map<string, (reply: RpcReply) => void>();
  private sequence = 0;
  private readonly queueOptions: amqplib.Options.AssertQueue;

  constructor(
    private readonly connectionCount: RawConnections,
    /** Arguments of every queue the subscribers declare (none in the matrix). */
    queueArguments?: Record<string, unknown>,
  ) {
    super();
    this.name = connectionCount === 2 ? 'raw' : 'raw-1conn';
    this.queueOptions = queueArguments ? { durable: true, arguments: queueArguments } : { durable: true };
  }

  async setup(spec: BrokerSpec): Promise<void> {
    this.spec = spec;
    const connect = async (role: string) => {
      const connection = await amqplib.connect(spec.url, {
        noDelay: true,
        clientProperties: { connection_name: `bench:${spec.tag}${role}` },
      });
      this.connections.push(connection);
      return connection;
    };
    const publishing = await connect(this.connectionCount === 2 ? ':publish' : '');
    const consuming = this.connectionCount === 2 ? await connect(':consume') : publishing;
    if (spec.scenario === 'pubsub' || spec.scenario === 'boot') {
      const declarer = await consuming.createChannel();
      await declarer.assertExchange(spec.exchange, 'topic', { durable: true });
      const subscribe = async (ch: Channel, queue: string, key: string, handle: (event: BenchEvent) => void) => {
        await ch.assertQueue(queue, this.queueOptions);
        await ch.bindQueue(queue, spec.exchange, key);
        await ch.consume(
          queue,
          (msg: ConsumeMessage | null) => {
            if (!msg) return;
            handle(JSON.parse(msg.content.toString('utf8')) as BenchEvent);
            ch.ack(msg);
          },
          { noAck: false },
        );
      };
      if (spec.scenario === 'pubsub') {
        await declarer.prefetch(spec.prefetch);
        await subscribe(declarer, spec.queue, spec.routingKey, this.deliver);
      } else {
        // A channel answers one declaration at a time: spread the handlers over a few channels
        // declaring in parallel (each then carries its handlers' consumers).
        const lanes = Math.min(BOOT_LANES, spec.handlers);
        await Promise.all(
          Array.from({ length: lanes }, async (_, lane) => {
            const ch = lane === 0 ? declarer : await consuming.createChannel();
            await ch.prefetch(spec.prefetch);
            for (let i = lane; i < spec.handlers; i += lanes) {
              await subscribe(ch, handlerQueue(spec, i), handlerKey(i), (event) => this.deliverTo(i, event));
            }
          }),
        );
      }
      this.publisher = await publishing.createConfirmChannel();
    } else {
      const server = await consuming.createChannel();
      await server.assertQueue(spec.rpcQueue, { durable: false });
      await server.prefetch(spec.prefetch);
      // Replies leave on the publishing connection (two connections) or on the server's channel.
      const replies = this.connectionCount === 2 ? await publishing.createChannel() : server;
      await server.consume(
        spec.rpcQueue,
        (msg: ConsumeMessage | null) => {
          if (!msg) return;
          const reply = serve(JSON.parse(msg.content.toString('utf8')) as RpcRequest);
          replies.sendToQueue(msg.properties.replyTo as string, Buffer.from(JSON.stringify(reply)), {
            correlationId: msg.properties.correlationId as string,
            contentType: JSON_TYPE,
          });
          server.ack(msg);
        },
        { noAck: false },
      );
      // Direct reply-to: the client consumes the pseudo-queue (no acks) on the channel it publishes on.
      const client = await publishing.createChannel();
      await client.consume(DIRECT_REPLY_TO, (msg) => this.onReply(msg), { noAck: true });
      this.client = client;
    }
  }

  protected publish(event: BenchEvent, routingKey: string): Promise<void> {
    const content = Buffer.from(JSON.stringify(event));
    return this.drained
      ? this.drained.then(() => this.publishNow(content, routingKey))
      : this.publishNow(content, routingKey);
  }

  private publishNow(content: Buffer, routingKey: string): Promise<void> {
    const channel = this.publisher!;
    return new Promise((resolve, reject) => {
      const room = channel.publish(
        this.spec.exchange,
        routingKey,
        content,
        { persistent: true, contentType: JSON_TYPE },
        (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
      );
      if (!room && !this.drained) {
        this.drained = new Promise((ready) =>
          channel.once('drain', () => {
            this.drained = null;
            ready();
          }),
        );
      }
    });
  }

  protected call(request: RpcRequest): Promise<RpcReply> {
    const correlationId = String(++this.sequence);
    return new Promise((resolve) => {
      this.pending.set(correlationId, resolve);
      this.client!.sendToQueue(this.spec.rpcQueue, Buffer.from(JSON.stringify(request)), {
        correlationId,
        replyTo: DIRECT_REPLY_TO,
        contentType: JSON_TYPE,
      });
    });
  }

  private onReply(msg: ConsumeMessage | null): void {
    if (!msg) return;
    const id = msg.properties.correlationId as string;
    const resolve = this.pending.get(id);
    if (!resolve) return;
    this.pending.delete(id);
    resolve(JSON.parse(msg.content.toString('utf8')) as RpcReply);
  }

  async teardown(): Promise<void> {
    // The consuming connection first, so that no delivery arrives for a closed publisher.
    for (const connection of this.connections.reverse()) await connection.close();
  }
}

// One trial of the cluster scenario in a fresh process, connected to node 0 of the bench's 3-node
// cluster: pub/sub (persistent ~1 KB messages, confirms, ack after the handler) through a topic
// exchange to a durable classic or quorum queue, by Warren (`queueType` on @Subscribe) or by
// amqplib written by hand as the bench's reference is (a connection that publishes on a confirm
// channel, waiting for 'drain', and one that consumes with a prefetch and acks each message).
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import amqplib, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { Publisher, Subscribe, WarrenModule } from 'nestjs-warren';
import { BaseAdapter, type BenchEvent, type BrokerSpec, type RpcReply } from '../harness.js';
import { pubsubTrialMain } from '../side/pubsub-matrix.js';
import { queueTypeOf, type ClusterVariant } from './variants.js';

class WarrenClusterAdapter extends BaseAdapter {
  readonly name = 'warren';
  private app?: INestApplicationContext;
  private publisher?: Publisher;

  constructor(private readonly queueType: 'classic' | 'quorum') {
    super();
  }

  async setup(spec: BrokerSpec): Promise<void> {
    this.spec = spec;
    const deliver = this.deliver;
    const queueType = this.queueType;

    @Injectable()
    class Handlers {
      @Subscribe(spec.exchange, spec.routingKey, { queue: spec.queue, queueType, prefetch: spec.prefetch })
      onEvent(event: BenchEvent): void {
        deliver(event);
      }
    }

    @Module({
      imports: [WarrenModule.forRoot({ url: spec.url, prefetch: spec.prefetch, connectionName: `bench:${spec.tag}` })],
      providers: [Handlers],
    })
    class BenchModule {}

    this.app = await NestFactory.createApplicationContext(BenchModule, { logger: ['error', 'warn'] });
    this.publisher = this.app.get(Publisher);
  }

  protected publish(event: BenchEvent, routingKey: string): Promise<void> {
    return this.publisher!.publish(this.spec.exchange, routingKey, event);
  }

  protected call(): Promise<RpcReply> {
    throw new Error('the cluster scenario makes no RPC calls');
  }

  async teardown(): Promise<void> {
    await this.app?.close();
  }
}

class RawClusterAdapter extends BaseAdapter {
  readonly name = 'raw';
  private connections: ChannelModel[] = [];
  private channel?: ConfirmChannel;
  private drained: Promise<void> | null = null;

  constructor(private readonly queueType: 'classic' | 'quorum') {
    super();
  }

  async setup(spec: BrokerSpec): Promise<void> {
    this.spec = spec;
    const connect = async (role: string) => {
      const connection = await amqplib.connect(spec.url, {
        noDelay: true,
        clientProperties: { connection_name: `bench:${spec.tag}:${role}` },
      });
      this.connections.push(connection);
      return connection;
    };
    const publishing = await connect('publish');
    const consuming = await connect('consume');
    const ch = await consuming.createChannel();
    await ch.assertExchange(spec.exchange, 'topic', { durable: true });
    await ch.assertQueue(spec.queue, { durable: true, arguments: { 'x-queue-type': this.queueType } });
    await ch.bindQueue(spec.queue, spec.exchange, spec.routingKey);
    await ch.prefetch(spec.prefetch);
    await ch.consume(spec.queue, (msg) => {
      if (!msg) return;
      this.deliver(JSON.parse(msg.content.toString('utf8')) as BenchEvent);
      ch.ack(msg);
    });
    this.channel = await publishing.createConfirmChannel();
  }

  protected publish(event: BenchEvent, routingKey: string): Promise<void> {
    const content = Buffer.from(JSON.stringify(event));
    return this.drained
      ? this.drained.then(() => this.publishNow(content, routingKey))
      : this.publishNow(content, routingKey);
  }

  private publishNow(content: Buffer, routingKey: string): Promise<void> {
    const channel = this.channel!;
    return new Promise((resolve, reject) => {
      const room = channel.publish(
        this.spec.exchange,
        routingKey,
        content,
        { persistent: true, contentType: 'application/json' },
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

  protected call(): Promise<RpcReply> {
    throw new Error('the cluster scenario makes no RPC calls');
  }

  async teardown(): Promise<void> {
    for (const connection of this.connections.reverse()) await connection.close();
  }
}

pubsubTrialMain<ClusterVariant>(async ({ variant }) =>
  variant.startsWith('raw')
    ? new RawClusterAdapter(queueTypeOf(variant))
    : new WarrenClusterAdapter(queueTypeOf(variant)),
);

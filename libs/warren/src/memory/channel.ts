import type { ConsumeMessage, GetMessage, Message, Options, Replies } from 'amqplib';
import { EventEmitter } from 'node:events';
import {
  type AmqpMethod,
  BrokerRefusal,
  channelClosedByServer,
  copyProperties,
  generatedName,
  IllegalOperationError,
  operationFailed,
  publishedProperties,
} from './amqp-wire.js';
import type { MemoryBroker } from './broker.js';
import type { MemoryConnection } from './connection.js';
import type { ConsumerChannel, MemoryQueue, QueueConsumer, QueuedMessage, StoredMessage } from './queue.js';

/** RabbitMQ's pseudo-queue for direct reply-to. */
export const DIRECT_REPLY_QUEUE = 'amq.rabbitmq.reply-to';

type ConsumeCallback = (msg: ConsumeMessage | null) => void;
type ConfirmCallback = (err: Error | null) => void;

interface PendingReply {
  method: AmqpMethod;
  reject(err: Error): void;
}

interface Unacked {
  queue: MemoryQueue;
  entry: QueuedMessage;
  /** Undefined for a basic.get delivery. */
  consumer?: QueueConsumer;
}

interface ConfirmSlot {
  callback?: ConfirmCallback;
  waiters: ConfirmCallback[];
}

/**
 * An amqplib `Channel` (or `ConfirmChannel` with `confirm`) on the in-memory broker.
 *
 * It has two halves, like a real channel: the broker's side, which acts at once when the client
 * calls a method (declares, routes, delivers, requeues), and the client's side, which learns of
 * the results through frames the connection hands over asynchronously, in order (replies,
 * deliveries, returns, confirms, the broker closing the channel). Nothing reaches a client
 * callback from inside the method that caused it.
 */
export class MemoryChannel extends EventEmitter implements ConsumerChannel {
  // The client's view.
  private clientState: 'open' | 'closing' | 'closed' = 'open';
  private pending: PendingReply[] = [];
  private readonly callbacks = new Map<string, ConsumeCallback>();
  private unconfirmed = new Set<ConfirmSlot>();
  private closedWithUnconfirmed = false;
  // The broker's view.
  private serverOpen = true;
  private nextDeliveryTag = 1;
  private readonly unacked = new Map<number, Unacked>();
  private readonly consumers = new Map<string, { consumer: QueueConsumer; queue?: MemoryQueue }>();
  private consumerPrefetch = 0;
  private channelPrefetch = 0;
  private lastQueue?: string;
  /** This channel's direct reply-to consumer and the key replies are addressed to. */
  private replyConsumer?: { tag: string; key: string };

  constructor(
    readonly connection: MemoryConnection,
    private readonly broker: MemoryBroker,
    readonly confirm: boolean,
  ) {
    super();
  }

  /** The channel.open handshake: resolves once the client has the channel. */
  open(): Promise<this> {
    return this.rpc('ChannelOpen', () => this);
  }

  // ---- declarations --------------------------------------------------------------------------

  assertQueue(queue = '', options: Options.AssertQueue = {}): Promise<Replies.AssertQueue> {
    return this.rpc('QueueDeclare', () => {
      const reply = this.broker.declareQueue(this.connection, queue, {
        durable: options.durable ?? true,
        exclusive: !!options.exclusive,
        autoDelete: !!options.autoDelete,
        arguments: queueArguments(options),
      });
      this.lastQueue = reply.queue;
      return reply;
    });
  }

  checkQueue(queue: string): Promise<Replies.AssertQueue> {
    return this.rpc('QueueDeclare', () => {
      const reply = this.broker.checkQueue(this.connection, this.queueName(queue));
      this.lastQueue = reply.queue;
      return reply;
    });
  }

  deleteQueue(queue: string, options: Options.DeleteQueue = {}): Promise<Replies.DeleteQueue> {
    return this.rpc('QueueDelete', () => ({
      messageCount: this.broker.deleteQueue(this.connection, this.queueName(queue), {
        ifUnused: !!options.ifUnused,
        ifEmpty: !!options.ifEmpty,
      }),
    }));
  }

  purgeQueue(queue: string): Promise<Replies.PurgeQueue> {
    return this.rpc('QueuePurge', () => ({
      messageCount: this.broker.purgeQueue(this.connection, this.queueName(queue)),
    }));
  }

  bindQueue(queue: string, source: string, pattern: string, args?: object): Promise<Replies.Empty> {
    return this.rpc('QueueBind', () => {
      this.broker.bindQueue(this.connection, this.queueName(queue), source, pattern, args);
      return {};
    });
  }

  unbindQueue(queue: string, source: string, pattern: string, args?: object): Promise<Replies.Empty> {
    return this.rpc('QueueUnbind', () => {
      this.broker.unbindQueue(this.connection, this.queueName(queue), source, pattern, args);
      return {};
    });
  }

  assertExchange(
    exchange: string,
    type: string,
    options: Options.AssertExchange = {},
  ): Promise<Replies.AssertExchange> {
    return this.rpc('ExchangeDeclare', () => {
      const args: Record<string, unknown> = { ...options.arguments };
      if (options.alternateExchange !== undefined) args['alternate-exchange'] = options.alternateExchange;
      this.broker.declareExchange(exchange, type, {
        durable: options.durable ?? true,
        autoDelete: !!options.autoDelete,
        internal: !!options.internal,
        arguments: args,
      });
      return { exchange };
    });
  }

  checkExchange(exchange: string): Promise<Replies.Empty> {
    return this.rpc('ExchangeDeclare', () => {
      this.broker.checkExchange(exchange);
      return {};
    });
  }

  deleteExchange(exchange: string, options: Options.DeleteExchange = {}): Promise<Replies.Empty> {
    return this.rpc('ExchangeDelete', () => {
      this.broker.deleteExchange(exchange, !!options.ifUnused);
      return {};
    });
  }

  bindExchange(destination: string, source: string, pattern: string, args?: object): Promise<Replies.Empty> {
    return this.rpc('ExchangeBind', () => {
      this.broker.bindExchange(destination, source, pattern, args);
      return {};
    });
  }

  unbindExchange(destination: string, source: string, pattern: string, args?: object): Promise<Replies.Empty> {
    return this.rpc('ExchangeUnbind', () => {
      this.broker.exchangeUnbind(destination, source, pattern, args);
      return {};
    });
  }

  // ---- consuming -----------------------------------------------------------------------------

  /** basic.qos: per consumer (for consumers started afterwards) or, with `global`, per channel. */
  prefetch(count: number, global = false): Promise<Replies.Empty> {
    return this.rpc(
      'BasicQos',
      () => {
        if (global) this.channelPrefetch = count || 0;
        else this.consumerPrefetch = count || 0;
        return {};
      },
      () => this.dispatchAll(),
    );
  }

  qos(count: number, global = false): Promise<Replies.Empty> {
    return this.prefetch(count, global);
  }

  consume(queue: string, callback: ConsumeCallback, options: Options.Consume = {}): Promise<Replies.Consume> {
    let started: MemoryQueue | undefined;
    return this.rpc(
      'BasicConsume',
      () => {
        const tag = options.consumerTag || generatedName('amq.ctag-');
        if (this.consumers.has(tag)) {
          throw new BrokerRefusal('NOT_ALLOWED', `attempt to reuse consumer tag '${tag}'`, 'connection');
        }
        const consumer: QueueConsumer = {
          tag,
          channel: this,
          noAck: !!options.noAck,
          exclusive: !!options.exclusive,
          prefetch: this.consumerPrefetch,
          unacked: 0,
        };
        if (queue === DIRECT_REPLY_QUEUE) {
          if (!consumer.noAck) throw new BrokerRefusal('PRECONDITION_FAILED', 'reply consumer cannot acknowledge');
          if (this.replyConsumer) throw new BrokerRefusal('PRECONDITION_FAILED', 'reply consumer already set');
          this.replyConsumer = { tag, key: this.broker.registerReplyChannel(this) };
          this.consumers.set(tag, { consumer });
          return { consumerTag: tag };
        }
        started = this.broker.consume(this.connection, this.queueName(queue), consumer);
        this.consumers.set(tag, { consumer, queue: started });
        return { consumerTag: tag };
      },
      // Registered on the client before any delivery can reach it, as amqplib does on consume-ok.
      ({ consumerTag }) => this.callbacks.set(consumerTag, callback),
      () => started?.dispatch(),
    );
  }

  cancel(consumerTag: string): Promise<Replies.Empty> {
    return this.rpc(
      'BasicCancel',
      () => {
        this.dropConsumer(consumerTag);
        return { consumerTag };
      },
      () => this.callbacks.delete(consumerTag),
    );
  }

  get(queue: string, options: Options.Get = {}): Promise<GetMessage | false> {
    return this.rpc('BasicGet', () => {
      const source = this.broker.queueForGet(this.connection, this.queueName(queue));
      const entry = source.take();
      if (!entry) return false as const;
      const deliveryTag = this.nextDeliveryTag++;
      if (!options.noAck) this.unacked.set(deliveryTag, { queue: source, entry });
      const message: GetMessage = {
        fields: {
          deliveryTag,
          redelivered: entry.redelivered,
          exchange: entry.message.exchange,
          routingKey: entry.message.routingKey,
          messageCount: source.messageCount,
        },
        properties: copyProperties(entry.message.properties),
        content: Buffer.from(entry.message.content),
      };
      return message;
    });
  }

  ack(message: Message, allUpTo = false): void {
    this.settle('BasicAck', message.fields.deliveryTag, allUpTo, 'ack');
  }

  ackAll(): void {
    this.settle('BasicAck', 0, true, 'ack');
  }

  nack(message: Message, allUpTo = false, requeue = true): void {
    this.settle('BasicNack', message.fields.deliveryTag, allUpTo, requeue ? 'requeue' : 'discard');
  }

  nackAll(requeue = true): void {
    this.settle('BasicNack', 0, true, requeue ? 'requeue' : 'discard');
  }

  reject(message: Message, requeue = true): void {
    this.settle('BasicReject', message.fields.deliveryTag, false, requeue ? 'requeue' : 'discard');
  }

  // ---- publishing ----------------------------------------------------------------------------

  /**
   * basic.publish. Returns true (there is always room); on a confirm channel `callback` gets
   * null once the broker has taken the message, or an error when it refused it.
   */
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish = {},
    callback?: ConfirmCallback,
  ): boolean {
    this.assertUsable();
    if (!Buffer.isBuffer(content)) throw new TypeError('content is not a buffer');
    const properties = publishedProperties(options);
    const slot: ConfirmSlot | undefined = this.confirm ? { callback, waiters: [] } : undefined;
    if (slot) this.unconfirmed.add(slot);
    if (!this.serverOpen) return true;
    try {
      if (properties.replyTo === DIRECT_REPLY_QUEUE) {
        if (!this.replyConsumer) throw new BrokerRefusal('PRECONDITION_FAILED', 'fast reply consumer does not exist');
        properties.replyTo = `${DIRECT_REPLY_QUEUE}.${this.replyConsumer.key}`;
      }
      const outcome = this.broker.publish(this.connection, exchange, routingKey, Buffer.from(content), properties);
      if (options.mandatory && !outcome.routed) {
        const returned: Message = {
          fields: { replyCode: 312, replyText: 'NO_ROUTE', exchange, routingKey } as unknown as Message['fields'],
          properties: copyProperties(outcome.message.properties),
          content: Buffer.from(content),
        };
        this.toClient(() => this.emit('return', returned));
      }
      if (slot) {
        this.toClient(() => this.confirmed(slot, outcome.accepted ? null : new Error('message nacked')));
      }
    } catch (err) {
      if (!(err instanceof BrokerRefusal)) throw err;
      this.refuse(err, 'BasicPublish');
    }
    return true;
  }

  sendToQueue(queue: string, content: Buffer, options?: Options.Publish, callback?: ConfirmCallback): boolean {
    return this.publish('', queue, content, options, callback);
  }

  /** Resolves once every message published so far is confirmed; rejects on a nack or a closed channel. */
  waitForConfirms(): Promise<void> {
    if (this.closedWithUnconfirmed) return Promise.reject(new Error('channel closed'));
    const waits = [...this.unconfirmed].map(
      (slot) => new Promise<void>((resolve, reject) => slot.waiters.push((err) => (err ? reject(err) : resolve()))),
    );
    return Promise.all(waits).then(() => undefined);
  }

  // ---- closing -------------------------------------------------------------------------------

  close(): Promise<void> {
    if (this.clientState !== 'open') {
      return Promise.reject(
        new IllegalOperationError(this.clientState === 'closing' ? 'Channel closing' : 'Channel closed'),
      );
    }
    this.clientState = 'closing';
    this.serverClose();
    return new Promise<void>((resolve) =>
      this.connection.send(() => {
        this.toClosed();
        resolve();
      }),
    );
  }

  // ---- the broker's side, called by queues and the broker -------------------------------------

  deliver(consumer: QueueConsumer, queue: MemoryQueue, entry: QueuedMessage): void {
    const deliveryTag = this.nextDeliveryTag++;
    if (!consumer.noAck) this.unacked.set(deliveryTag, { queue, entry, consumer });
    this.sendDelivery(consumer.tag, deliveryTag, entry.redelivered, entry.message);
  }

  /** A reply published to this channel's direct reply-to address. False when it has no reply consumer. */
  deliverReply(message: StoredMessage): boolean {
    if (!this.serverOpen || !this.replyConsumer) return false;
    this.sendDelivery(this.replyConsumer.tag, this.nextDeliveryTag++, false, message);
    return true;
  }

  cancelledByBroker(consumer: QueueConsumer): void {
    this.consumers.delete(consumer.tag);
    this.toClient(() => {
      const callback = this.callbacks.get(consumer.tag);
      if (!callback) return;
      this.callbacks.delete(consumer.tag);
      callback(null);
    });
  }

  hasRoom(): boolean {
    return this.channelPrefetch === 0 || this.unacked.size < this.channelPrefetch;
  }

  /** The broker closes this channel, e.g. when its connection goes. */
  serverClose(): void {
    if (!this.serverOpen) return;
    this.serverOpen = false;
    for (const tag of [...this.consumers.keys()]) this.dropConsumer(tag);
    // What this channel had not acked goes back to its queues, marked redelivered.
    this.returnUnacked([...this.unacked.values()], 'requeue');
    this.unacked.clear();
    this.connection.forget(this);
  }

  /** The client learns that the channel is gone (its own close, or its connection's). */
  toClosed(): void {
    if (this.clientState === 'closed') return;
    this.clientState = 'closed';
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) p.reject(new Error('Channel ended, no reply will be forthcoming'));
    this.callbacks.clear();
    const unconfirmed = this.unconfirmed;
    this.unconfirmed = new Set();
    if (unconfirmed.size > 0) this.closedWithUnconfirmed = true;
    for (const slot of unconfirmed) this.confirmed(slot, new Error('channel closed'));
    this.emit('close');
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * Runs a synchronous RPC: the broker acts at once; the reply reaches the client as a frame,
   * after everything the broker sent before it. A refusal closes the channel instead.
   */
  private rpc<T>(
    method: AmqpMethod,
    operation: () => T,
    onReply?: (result: T) => void,
    after?: () => void,
  ): Promise<T> {
    if (this.clientState !== 'open') {
      return Promise.reject(
        new IllegalOperationError(this.clientState === 'closing' ? 'Channel closing' : 'Channel closed'),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const pending: PendingReply = { method, reject };
      this.pending.push(pending);
      // Once the broker has closed the channel, it ignores what follows; the close frame rejects it.
      if (!this.serverOpen) return;
      let result: T;
      try {
        result = operation();
      } catch (err) {
        if (err instanceof BrokerRefusal) this.refuse(err, method);
        else {
          this.pending = this.pending.filter((p) => p !== pending);
          reject(err as Error);
        }
        return;
      }
      this.connection.send(() => {
        // A channel closing (or closed) ignores replies; they are rejected when it is closed.
        if (this.clientState !== 'open') return;
        this.pending = this.pending.filter((p) => p !== pending);
        onReply?.(result);
        resolve(result);
      });
      after?.();
    });
  }

  /** The broker refuses something: it closes the channel (or the connection) with the refusal. */
  private refuse(refusal: BrokerRefusal, method: AmqpMethod): void {
    if (refusal.scope === 'connection') {
      this.connection.closeByBroker(refusal);
      return;
    }
    this.serverClose();
    this.connection.send(() => this.closedByBroker(refusal, method));
  }

  /** Client side of a channel.close from the broker, in amqplib's order. */
  private closedByBroker(refusal: BrokerRefusal, method: AmqpMethod): void {
    if (this.clientState !== 'open') return;
    const [culprit, ...rest] = this.pending;
    this.pending = rest;
    culprit?.reject(
      culprit.method === method ? operationFailed(method, refusal) : channelClosedByServer(refusal, method),
    );
    const error = channelClosedByServer(refusal, method);
    if (this.listenerCount('error') === 0) {
      // amqplib: an 'error' nobody listens to breaks the frame loop, which takes the connection down.
      this.connection.fail(error);
      return;
    }
    this.emit('error', error);
    this.toClosed();
  }

  private sendDelivery(consumerTag: string, deliveryTag: number, redelivered: boolean, message: StoredMessage): void {
    const delivery: ConsumeMessage = {
      fields: { consumerTag, deliveryTag, redelivered, exchange: message.exchange, routingKey: message.routingKey },
      properties: copyProperties(message.properties),
      content: Buffer.from(message.content),
    };
    this.toClient(() => {
      const callback = this.callbacks.get(consumerTag);
      // amqplib throws on a delivery for a consumer it does not know; that takes the connection down.
      if (!callback) throw new Error(`Unknown consumer: ${consumerTag}`);
      callback(delivery);
    });
  }

  /** A frame for the client, dropped if the channel is no longer open on its side. */
  private toClient(frame: () => void): void {
    this.connection.send(() => {
      if (this.clientState === 'open') frame();
    });
  }

  private confirmed(slot: ConfirmSlot, err: Error | null): void {
    this.unconfirmed.delete(slot);
    slot.callback?.(err);
    for (const waiter of slot.waiters) waiter(err);
  }

  private settle(
    method: AmqpMethod,
    deliveryTag: number,
    multiple: boolean,
    outcome: 'ack' | 'requeue' | 'discard',
  ): void {
    this.assertUsable();
    if (!this.serverOpen) return;
    let settled: Unacked[];
    if (multiple) {
      if (deliveryTag !== 0 && !this.unacked.has(deliveryTag)) {
        this.refuse(new BrokerRefusal('PRECONDITION_FAILED', `unknown delivery tag ${deliveryTag}`), method);
        return;
      }
      settled = [];
      for (const [tag, u] of this.unacked) {
        if (deliveryTag !== 0 && tag > deliveryTag) break;
        settled.push(u);
        this.unacked.delete(tag);
      }
    } else {
      const u = this.unacked.get(deliveryTag);
      if (!u) {
        this.refuse(new BrokerRefusal('PRECONDITION_FAILED', `unknown delivery tag ${deliveryTag}`), method);
        return;
      }
      this.unacked.delete(deliveryTag);
      settled = [u];
    }
    this.returnUnacked(settled, outcome);
    if (this.channelPrefetch > 0) this.dispatchAll();
  }

  /** Settles deliveries: frees their consumers' prefetch, then requeues, discards or forgets them. */
  private returnUnacked(settled: Unacked[], outcome: 'ack' | 'requeue' | 'discard'): void {
    const byQueue = new Map<MemoryQueue, QueuedMessage[]>();
    for (const u of settled) {
      if (u.consumer) u.queue.release(u.consumer);
      if (outcome === 'requeue') byQueue.set(u.queue, [...(byQueue.get(u.queue) ?? []), u.entry]);
      else if (outcome === 'discard') u.queue.discard(u.entry);
    }
    for (const queue of new Set(settled.map((u) => u.queue))) {
      const entries = byQueue.get(queue);
      if (entries) queue.requeue(entries);
      else queue.dispatch();
    }
  }

  private dropConsumer(tag: string): void {
    const found = this.consumers.get(tag);
    if (!found) return;
    this.consumers.delete(tag);
    if (this.replyConsumer?.tag === tag) {
      this.broker.unregisterReplyChannel(this.replyConsumer.key);
      this.replyConsumer = undefined;
    }
    found.queue?.removeConsumer(found.consumer);
  }

  private dispatchAll(): void {
    for (const { queue } of this.consumers.values()) queue?.dispatch();
  }

  /** An empty queue name means the queue this channel declared last, as in AMQP 0-9-1. */
  private queueName(queue: string): string {
    if (queue !== '') return queue;
    if (this.lastQueue === undefined) throw new BrokerRefusal('NOT_FOUND', 'no previously declared queue');
    return this.lastQueue;
  }

  private assertUsable(): void {
    if (this.clientState !== 'open') {
      throw new IllegalOperationError(this.clientState === 'closing' ? 'Channel closing' : 'Channel closed');
    }
  }
}

/** amqplib's promotion of queue options into arguments. */
function queueArguments(options: Options.AssertQueue): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  for (const key in options.arguments ?? {}) args[key] = (options.arguments as Record<string, unknown>)[key];
  const promoted: [string, unknown][] = [
    ['x-expires', options.expires],
    ['x-message-ttl', options.messageTtl],
    ['x-dead-letter-exchange', options.deadLetterExchange],
    ['x-dead-letter-routing-key', options.deadLetterRoutingKey],
    ['x-max-length', options.maxLength],
    ['x-max-priority', options.maxPriority],
    ['x-overflow', (options as { overflow?: unknown }).overflow],
    ['x-queue-mode', (options as { queueMode?: unknown }).queueMode],
  ];
  for (const [key, value] of promoted) if (value !== undefined) args[key] = value;
  return args;
}

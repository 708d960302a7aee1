import type { MessageProperties, Replies } from 'amqplib';
import { isDeepStrictEqual } from 'node:util';
import { randomBytes } from 'node:crypto';
import { decodePayload } from '../codec/message-codec.js';
import { BUILT_IN_EXCHANGES, isExchangeType } from '../topology/amqp-rules.js';
import { BrokerRefusal, describeArgument, generatedName, senderSelectedKeys, wireTable } from './amqp-wire.js';
import type { MemoryChannel } from './channel.js';
import { DIRECT_REPLY_QUEUE } from './channel.js';
import { MemoryConnection } from './connection.js';
import { type DestinationType, type ExchangeSettings, MemoryExchange } from './exchange.js';
import {
  type DeathReason,
  MemoryQueue,
  queueArgumentProblem,
  type QueueConsumer,
  type QueuedMessage,
  type QueueOwner,
  type StoredMessage,
} from './queue.js';

const VHOST = "in vhost '/'";
/** The queue arguments RabbitMQ compares when a queue is declared again. */
const EQUIVALENT_QUEUE_ARGS = [
  'x-expires',
  'x-message-ttl',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-length',
  'x-max-length-bytes',
  'x-max-priority',
  'x-overflow',
  'x-queue-mode',
  'x-single-active-consumer',
  'x-queue-type',
];

export interface QueueOptions {
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  arguments: Record<string, unknown>;
}

/** What the broker tells the publishing channel. */
export interface PublishOutcome {
  /** The message as stored (what a mandatory return carries). */
  message: StoredMessage;
  /** At least one queue (or a direct reply-to consumer) took it. */
  routed: boolean;
  /** No queue refused it (`x-overflow: reject-publish`): the publisher confirm is an ack. */
  accepted: boolean;
}

/** A ready message as `MemoryBroker.peek()` shows it: what a consumer would be handed, and the payload Warren would decode. */
export interface MemoryMessage {
  content: Buffer;
  /** The body decoded by its content type, as a handler would receive it (the raw content if it does not decode). */
  payload: unknown;
  properties: MessageProperties;
  /** `properties.headers`, `{}` for none: `x-death` of a dead letter, Warren's failure headers, the trace context. */
  headers: Record<string, unknown>;
  /** The exchange it was published or dead-lettered to, and its routing key. */
  exchange: string;
  routingKey: string;
  /** Delivered before and returned to the queue. */
  redelivered: boolean;
}

/** A queue as `MemoryBroker.queue()` describes it. */
export interface MemoryQueueInfo {
  name: string;
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  arguments: Record<string, unknown>;
  messageCount: number;
  consumerCount: number;
}

/**
 * One in-memory RabbitMQ node with a single vhost: exchanges, queues, bindings and connections.
 * Channels call into it synchronously; every refusal is a `BrokerRefusal` with RabbitMQ's reply
 * code and text. `memoryBroker(name)` gives the broker behind `memory://name`.
 */
export class MemoryBroker implements QueueOwner {
  private readonly exchanges = new Map<string, MemoryExchange>();
  private readonly queues = new Map<string, MemoryQueue>();
  private readonly openConnections = new Set<MemoryConnection>();
  private readonly replyChannels = new Map<string, MemoryChannel>();

  constructor(readonly name: string) {
    this.predeclare();
  }

  // ---- inspection and control (for tests and tools) -------------------------------------------

  /** Queue names, sorted. */
  queueNames(): string[] {
    return [...this.queues.keys()].sort();
  }

  /** Exchange names (the predeclared `amq.*` ones included), sorted. */
  exchangeNames(): string[] {
    return [...this.exchanges.keys()].sort();
  }

  queue(name: string): MemoryQueueInfo | undefined {
    const q = this.queues.get(name);
    if (!q) return undefined;
    return {
      name,
      durable: q.settings.durable,
      exclusive: q.exclusiveOwner !== undefined,
      autoDelete: q.settings.autoDelete,
      arguments: { ...q.settings.arguments },
      messageCount: q.messageCount,
      consumerCount: q.consumerCount,
    };
  }

  /**
   * Up to `count` of a queue's ready messages, oldest first (priority order in a priority queue),
   * without taking them: a test reads a dead-letter queue with no consumer on it. Messages handed
   * to a consumer and not yet acked are not ready, so not shown. An unknown queue is an error
   * naming it, not an empty list.
   */
  peek(queue: string, count = Number.POSITIVE_INFINITY): MemoryMessage[] {
    const q = this.queues.get(queue);
    if (!q) {
      throw new Error(
        `memoryBroker("${this.name}").peek(): there is no queue "${queue}"; the queues are ${this.queueNames().join(', ') || '(none)'}`,
      );
    }
    return q.peek(count).map(({ message, redelivered }) => {
      let payload: unknown;
      try {
        payload = decodePayload(message.content, message.properties.contentType);
      } catch {
        payload = message.content;
      }
      return {
        content: Buffer.from(message.content),
        payload,
        properties: message.properties,
        headers: { ...message.properties.headers },
        exchange: message.exchange,
        routingKey: message.routingKey,
        redelivered,
      };
    });
  }

  /** Bindings whose source is `exchange`, as the management API lists them. */
  bindings(exchange: string): {
    source: string;
    destination: string;
    destinationType: DestinationType;
    routingKey: string;
    arguments: object;
  }[] {
    const x = this.exchanges.get(exchange);
    return (x?.list() ?? []).map((b) => ({
      source: exchange,
      destination: b.destination,
      destinationType: b.destinationType,
      routingKey: b.routingKey,
      arguments: { ...b.arguments },
    }));
  }

  /** The client-given names (`connection_name`) of the open connections. */
  connectionNames(): string[] {
    return [...this.openConnections].map((c) => c.clientName ?? '');
  }

  /**
   * Closes connections as RabbitMQ's management UI does (320 CONNECTION_FORCED): all of them, or
   * those named `connectionName`. Their clients see a lost connection and reconnect.
   */
  closeConnections(connectionName?: string, reason = 'Closed via the in-memory broker'): number {
    const doomed = [...this.openConnections].filter(
      (c) => connectionName === undefined || c.clientName === connectionName,
    );
    for (const c of doomed) c.closeByBroker(new BrokerRefusal('CONNECTION_FORCED', reason, 'connection'));
    return doomed.length;
  }

  /** Closes every connection and deletes every queue and exchange: a fresh broker. */
  reset(): void {
    this.closeConnections(undefined, 'broker reset');
    for (const q of [...this.queues.values()]) this.removeQueue(q);
    this.exchanges.clear();
    this.predeclare();
  }

  // ---- connections ----------------------------------------------------------------------------

  connect(clientName: string | undefined, user: string): MemoryConnection {
    const connection = new MemoryConnection(this, clientName, user);
    this.openConnections.add(connection);
    return connection;
  }

  /** A connection has gone: its exclusive queues go with it. */
  disconnected(connection: MemoryConnection): void {
    this.openConnections.delete(connection);
    for (const q of [...this.queues.values()]) if (q.exclusiveOwner === connection) this.removeQueue(q);
  }

  registerReplyChannel(channel: MemoryChannel): string {
    const key = randomBytes(12).toString('base64url');
    this.replyChannels.set(key, channel);
    return key;
  }

  unregisterReplyChannel(key: string): void {
    this.replyChannels.delete(key);
  }

  // ---- exchanges ------------------------------------------------------------------------------

  declareExchange(name: string, type: string, settings: ExchangeSettings): void {
    if (!isExchangeType(type)) {
      throw new BrokerRefusal('COMMAND_INVALID', `unknown exchange type '${type}'`, 'connection');
    }
    notDefault(name);
    let exchange = this.exchanges.get(name);
    if (!exchange) {
      if (name.startsWith('amq.')) {
        throw new BrokerRefusal('ACCESS_REFUSED', `exchange name '${name}' contains reserved prefix 'amq.*'`);
      }
      exchange = new MemoryExchange(name, type, {
        ...settings,
        arguments: wireTable(settings.arguments),
      });
      this.exchanges.set(name, exchange);
      return;
    }
    const what = `exchange '${name}' ${VHOST}`;
    assertField('type', exchange.type, type, what);
    assertField('durable', exchange.settings.durable, settings.durable, what);
    assertField('auto_delete', exchange.settings.autoDelete, settings.autoDelete, what);
    assertField('internal', exchange.settings.internal, settings.internal, what);
    assertArgs(['alternate-exchange'], exchange.settings.arguments, wireTable(settings.arguments), what);
  }

  checkExchange(name: string): void {
    notDefault(name);
    this.exchange(name);
  }

  deleteExchange(name: string, ifUnused: boolean): void {
    notDefault(name);
    const exchange = this.exchanges.get(name);
    if (!exchange) return;
    if (name.startsWith('amq.')) {
      throw new BrokerRefusal('ACCESS_REFUSED', `deletion of system exchange '${name}' ${VHOST} is not allowed`);
    }
    if (ifUnused && exchange.bindingCount > 0)
      throw new BrokerRefusal('PRECONDITION_FAILED', `exchange '${name}' ${VHOST} in use`);
    this.removeExchange(name);
  }

  // ---- queues ---------------------------------------------------------------------------------

  declareQueue(connection: MemoryConnection, requested: string, options: QueueOptions): Replies.AssertQueue {
    const name = requested === '' ? generatedName('amq.gen-') : requested;
    if (requested.startsWith('amq.')) {
      throw new BrokerRefusal('ACCESS_REFUSED', `queue name '${requested}' contains reserved prefix 'amq.*'`);
    }
    const args = wireTable(options.arguments);
    const owner = options.exclusive ? connection : undefined;
    const existing = this.queues.get(name);
    if (existing) {
      const what = `queue '${name}' ${VHOST}`;
      if (existing.exclusiveOwner !== owner) throw locked(name);
      assertField('durable', existing.settings.durable, options.durable, what);
      assertField('auto_delete', existing.settings.autoDelete, options.autoDelete, what);
      assertArgs(EQUIVALENT_QUEUE_ARGS, existing.settings.arguments, args, what);
      existing.touch();
      return { queue: name, messageCount: existing.messageCount, consumerCount: existing.consumerCount };
    }
    const problem = queueArgumentProblem(name, args);
    if (problem) throw problem;
    const queue = new MemoryQueue(
      name,
      { durable: options.durable, autoDelete: options.autoDelete, owner, arguments: args },
      this,
    );
    this.queues.set(name, queue);
    return { queue: name, messageCount: 0, consumerCount: 0 };
  }

  checkQueue(connection: MemoryConnection, name: string): Replies.AssertQueue {
    const queue = this.accessibleQueue(connection, name);
    queue.touch();
    return { queue: name, messageCount: queue.messageCount, consumerCount: queue.consumerCount };
  }

  deleteQueue(connection: MemoryConnection, name: string, options: { ifUnused: boolean; ifEmpty: boolean }): number {
    const queue = this.queues.get(name);
    if (!queue) return 0;
    checkExclusive(queue, connection);
    if (options.ifUnused && queue.consumerCount > 0)
      throw new BrokerRefusal('PRECONDITION_FAILED', `queue '${name}' ${VHOST} in use`);
    if (options.ifEmpty && queue.messageCount > 0)
      throw new BrokerRefusal('PRECONDITION_FAILED', `queue '${name}' ${VHOST} not empty`);
    const count = queue.messageCount;
    this.removeQueue(queue);
    return count;
  }

  purgeQueue(connection: MemoryConnection, name: string): number {
    return this.accessibleQueue(connection, name).purge();
  }

  bindQueue(
    connection: MemoryConnection,
    queue: string,
    exchange: string,
    key: string,
    args: object | undefined,
  ): void {
    this.bindable(connection, queue, exchange).bind(queue, key, args);
  }

  unbindQueue(
    connection: MemoryConnection,
    queue: string,
    exchange: string,
    key: string,
    args: object | undefined,
  ): void {
    if (this.bindable(connection, queue, exchange).unbind(queue, key, args)) this.removeExchange(exchange);
  }

  /** exchange.bind: messages `source` routes with `key` go on to `destination`, through its own bindings. */
  bindExchange(destination: string, source: string, key: string, args: object | undefined): void {
    this.exchangeBindable(destination, source).bind(destination, key, args, 'exchange');
  }

  exchangeUnbind(destination: string, source: string, key: string, args: object | undefined): void {
    if (this.exchangeBindable(destination, source).unbind(destination, key, args, 'exchange')) {
      this.removeExchange(source);
    }
  }

  /** The source of an exchange.bind or exchange.unbind, once both ends exist and neither is the default exchange. */
  private exchangeBindable(destination: string, source: string): MemoryExchange {
    notDefault(destination);
    notDefault(source);
    const x = this.exchange(source);
    this.exchange(destination);
    return x;
  }

  /** The exchange of a queue.bind or queue.unbind, once the broker's checks of both ends pass. */
  private bindable(connection: MemoryConnection, queue: string, exchange: string): MemoryExchange {
    notDefault(exchange);
    const x = this.exchange(exchange);
    this.accessibleQueue(connection, queue);
    return x;
  }

  /** basic.consume: checks the queue and adds the consumer (the caller dispatches afterwards). */
  consume(connection: MemoryConnection, name: string, consumer: QueueConsumer): MemoryQueue {
    const queue = this.accessibleQueue(connection, name);
    if (queue.hasExclusiveConsumer() || (consumer.exclusive && queue.consumerCount > 0)) {
      throw new BrokerRefusal('ACCESS_REFUSED', `queue '${name}' ${VHOST} in exclusive use`);
    }
    queue.addConsumer(consumer);
    return queue;
  }

  queueForGet(connection: MemoryConnection, name: string): MemoryQueue {
    return this.accessibleQueue(connection, name);
  }

  // ---- routing --------------------------------------------------------------------------------

  /** basic.publish: routes the message to its queues (or to a direct reply-to consumer). */
  publish(
    connection: MemoryConnection,
    exchangeName: string,
    routingKey: string,
    content: Buffer,
    properties: MessageProperties,
  ): PublishOutcome {
    const exchange = exchangeName === '' ? undefined : this.exchange(exchangeName);
    if (exchange?.settings.internal) {
      throw new BrokerRefusal('ACCESS_REFUSED', `cannot publish to internal exchange '${exchangeName}' ${VHOST}`);
    }
    checkExpiration(properties.expiration);
    if (properties.userId !== undefined && properties.userId !== connection.user) {
      throw new BrokerRefusal(
        'PRECONDITION_FAILED',
        `user_id property set to '${String(properties.userId)}' but authenticated user was '${connection.user}'`,
      );
    }
    const headers = properties.headers ?? {};
    const cc = senderSelectedKeys(headers, 'CC');
    const bcc = senderSelectedKeys(headers, 'BCC');
    // BCC routes but is never delivered.
    delete headers.BCC;
    const message: StoredMessage = {
      content,
      properties: { ...properties, headers },
      exchange: exchangeName,
      routingKey,
      routingKeys: [routingKey, ...cc],
    };
    if (exchangeName === '' && routingKey.startsWith(`${DIRECT_REPLY_QUEUE}.`)) {
      const target = this.replyChannels.get(routingKey.slice(DIRECT_REPLY_QUEUE.length + 1));
      return { message, routed: target?.deliverReply(message) ?? false, accepted: true };
    }
    const queues = this.route(exchangeName, [routingKey, ...cc, ...bcc], headers);
    let accepted = true;
    for (const queue of queues) accepted = queue.enqueue(message) && accepted;
    return { message, routed: queues.size > 0, accepted };
  }

  /**
   * Dead-letters a message that `queue` rejected, expired or dropped for length: to the queue's
   * dead-letter exchange, with the `x-death` history RabbitMQ writes. Without a dead-letter
   * exchange (or when it does not exist) the message is dropped.
   */
  deadLetter(queue: MemoryQueue, entry: QueuedMessage, reason: DeathReason): void {
    const dlx = queue.deadLetterExchange;
    if (dlx === undefined || (dlx !== '' && !this.exchanges.has(dlx))) return;
    const original = entry.message;
    const headers = wireTable(original.properties.headers);
    const previous = Array.isArray(headers['x-death']) ? (headers['x-death'] as unknown[]) : undefined;
    if (!previous) {
      headers['x-first-death-reason'] = reason;
      headers['x-first-death-queue'] = queue.name;
      headers['x-first-death-exchange'] = original.exchange;
    }
    const deaths = [...(previous ?? [])];
    const same = deaths.findIndex((d) => isTable(d) && d.queue === queue.name && d.reason === reason);
    if (same >= 0) {
      const death = deaths[same] as Record<string, unknown>;
      deaths.splice(same, 1);
      deaths.unshift({ ...death, count: (typeof death.count === 'number' ? death.count : 0) + 1 });
    } else {
      const death: Record<string, unknown> = {
        count: 1,
        reason,
        queue: queue.name,
        time: { '!': 'timestamp', value: Math.floor(Date.now() / 1000) },
        exchange: original.exchange,
        'routing-keys': [...original.routingKeys],
      };
      if (original.properties.expiration !== undefined) death['original-expiration'] = original.properties.expiration;
      deaths.unshift(death);
    }
    headers['x-death'] = deaths;
    const routingKeys = queue.deadLetterRoutingKey === undefined ? original.routingKeys : [queue.deadLetterRoutingKey];
    if (queue.deadLetterRoutingKey !== undefined) delete headers.CC;
    const message: StoredMessage = {
      content: original.content,
      properties: { ...original.properties, headers, expiration: undefined },
      exchange: dlx,
      routingKey: routingKeys[0],
      routingKeys,
    };
    for (const target of this.route(dlx, routingKeys, headers)) {
      if (reason !== 'rejected' && isCycle(target.name, deaths)) continue;
      target.enqueue(message);
    }
  }

  /** Deletes a queue (exclusive owner gone, auto-delete, x-expires, queue.delete) and its bindings. */
  removeQueue(queue: MemoryQueue): void {
    if (this.queues.get(queue.name) !== queue) return;
    this.queues.delete(queue.name);
    queue.delete();
    for (const exchange of [...this.exchanges.values()]) {
      if (exchange.unbindDestination(queue.name)) this.removeExchange(exchange.name);
    }
  }

  /**
   * Deletes an exchange with the bindings from it and to it; an auto-delete exchange that loses
   * its last binding that way goes too, as in RabbitMQ.
   */
  private removeExchange(name: string): void {
    if (!this.exchanges.delete(name)) return;
    for (const exchange of [...this.exchanges.values()]) {
      if (exchange.unbindDestination(name, 'exchange')) this.removeExchange(exchange.name);
    }
  }

  /**
   * RabbitMQ's routing: each exchange reached (the one published to, then those its bindings lead
   * to) routes the message by its own type, once; one that routes it nowhere hands it to its
   * alternate exchange. Every queue reached gets one copy, however many paths lead to it.
   */
  private route(exchangeName: string, routingKeys: string[], headers: Record<string, unknown>): Set<MemoryQueue> {
    const names = new Set<string>();
    if (exchangeName === '') {
      for (const key of routingKeys) if (this.queues.has(key)) names.add(key);
    } else {
      const seen = new Set<string>([exchangeName]);
      const work = [exchangeName];
      while (work.length > 0) {
        const exchange = this.exchanges.get(work.shift() as string);
        if (!exchange) continue;
        const routed = { queues: new Set<string>(), exchanges: new Set<string>() };
        for (const key of routingKeys) exchange.route(key, headers, routed);
        for (const q of routed.queues) names.add(q);
        const alternate = exchange.settings.arguments['alternate-exchange'];
        if (routed.queues.size === 0 && routed.exchanges.size === 0 && typeof alternate === 'string') {
          routed.exchanges.add(alternate);
        }
        for (const next of routed.exchanges) {
          if (seen.has(next)) continue;
          seen.add(next);
          work.push(next);
        }
      }
    }
    const queues = new Set<MemoryQueue>();
    for (const name of names) {
      const q = this.queues.get(name);
      if (q) queues.add(q);
    }
    return queues;
  }

  private exchange(name: string): MemoryExchange {
    const exchange = this.exchanges.get(name);
    if (!exchange) throw new BrokerRefusal('NOT_FOUND', `no exchange '${name}' ${VHOST}`);
    return exchange;
  }

  /** A queue this connection may use (it exists; if exclusive, it is this connection's). */
  private accessibleQueue(connection: MemoryConnection, name: string): MemoryQueue {
    const queue = this.queues.get(name);
    if (!queue) throw new BrokerRefusal('NOT_FOUND', `no queue '${name}' ${VHOST}`);
    checkExclusive(queue, connection);
    return queue;
  }

  private predeclare(): void {
    for (const [name, type] of BUILT_IN_EXCHANGES) {
      this.exchanges.set(
        name,
        new MemoryExchange(name, type, { durable: true, autoDelete: false, internal: false, arguments: {} }),
      );
    }
  }
}

function notDefault(exchange: string): void {
  if (exchange === '') throw new BrokerRefusal('ACCESS_REFUSED', 'operation not permitted on the default exchange');
}

function checkExclusive(queue: MemoryQueue, connection: MemoryConnection): void {
  const owner = queue.exclusiveOwner;
  if (owner !== undefined && owner !== connection) throw locked(queue.name);
}

function locked(queue: string): BrokerRefusal {
  return new BrokerRefusal(
    'RESOURCE_LOCKED',
    `cannot obtain exclusive access to locked queue '${queue}' ${VHOST}. It could be originally declared on another ` +
      'connection or the exclusive property value does not match that of the original declaration.',
  );
}

function assertField(field: string, current: unknown, received: unknown, what: string): void {
  if (current !== received) {
    throw new BrokerRefusal(
      'PRECONDITION_FAILED',
      `inequivalent arg '${field}' for ${what}: received '${String(received)}' but current is '${String(current)}'`,
    );
  }
}

function assertArgs(
  keys: string[],
  current: Record<string, unknown>,
  received: Record<string, unknown>,
  what: string,
): void {
  for (const key of keys) {
    let was = current[key];
    let now = received[key];
    // A classic queue declared without a type and one declared `classic` are the same queue.
    if (key === 'x-queue-type') {
      was ??= 'classic';
      now ??= 'classic';
    }
    if (isDeepStrictEqual(was, now)) continue;
    // Two values of one type are quoted bare; otherwise with their types (or `none`).
    const sameType = was !== undefined && now !== undefined && typeof was === typeof now;
    const detail = sameType
      ? `received '${String(now)}' but current is '${String(was)}'`
      : `received ${describeArgument(now)} but current is ${describeArgument(was)}`;
    throw new BrokerRefusal('PRECONDITION_FAILED', `inequivalent arg '${key}' for ${what}: ${detail}`);
  }
}

function checkExpiration(expiration: unknown): void {
  if (expiration === undefined) return;
  const text = String(expiration);
  if (!/^-?\d+$/.test(text)) throw new BrokerRefusal('PRECONDITION_FAILED', `invalid expiration '${text}': no_integer`);
  if (Number(text) < 0)
    throw new BrokerRefusal('PRECONDITION_FAILED', `invalid expiration '${text}': {value_negative,${text}}`);
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

/**
 * RabbitMQ drops a dead-lettered message that would come back to a queue it already died in,
 * unless a rejection is part of that cycle (then a consumer decided, not a timer).
 */
function isCycle(queue: string, deaths: unknown[]): boolean {
  const index = deaths.findIndex((d) => isTable(d) && d.queue === queue);
  if (index < 0) return false;
  return deaths.slice(0, index + 1).every((d) => isTable(d) && d.reason !== 'rejected');
}

const REGISTRY = Symbol.for('nestjs-warren.memory-brokers');

/**
 * The broker behind `memory://name` (`memory://` is the broker named ''), created on first use.
 * It lives as long as the process (or jest test file) does; `reset()` empties it.
 */
export function memoryBroker(name = ''): MemoryBroker {
  // On globalThis, so the ESM and the CommonJS build of the package share their brokers.
  const holder = globalThis as { [REGISTRY]?: Map<string, MemoryBroker> };
  const brokers = (holder[REGISTRY] ??= new Map());
  let broker = brokers.get(name);
  if (!broker) {
    broker = new MemoryBroker(name);
    brokers.set(name, broker);
  }
  return broker;
}

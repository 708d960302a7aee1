import type { MessageProperties } from 'amqplib';
import { BrokerRefusal } from './amqp-wire.js';

/** A message as the broker keeps it: immutable, shared by every queue it was routed to. */
export interface StoredMessage {
  readonly content: Buffer;
  /** As delivered (BCC already removed). */
  readonly properties: MessageProperties;
  /** The exchange it was published (or dead-lettered) to, and its routing key. */
  readonly exchange: string;
  readonly routingKey: string;
  /** Its routing key followed by those of its CC header: what `x-death` records. */
  readonly routingKeys: string[];
}

/** One message in one queue. */
export interface QueuedMessage {
  readonly message: StoredMessage;
  /** Order of arrival in this queue: a requeued message goes back to its place. */
  readonly seq: number;
  /** Its priority in a priority queue (`x-max-priority`), capped; 0 elsewhere. */
  readonly priority: number;
  /** Epoch ms after which it expires (per-queue TTL or the message's `expiration`, the lower). */
  readonly expiresAt?: number;
  redelivered: boolean;
}

/** What a queue needs from the channel a consumer lives on. */
export interface ConsumerChannel {
  /** Sends `entry` to the consumer; records it as unacked unless the consumer is no-ack. */
  deliver(consumer: QueueConsumer, queue: MemoryQueue, entry: QueuedMessage): void;
  /** Tells a consumer's client that the broker cancelled it (its queue was deleted). */
  cancelledByBroker(consumer: QueueConsumer): void;
  /** False while the channel's own prefetch (global) is used up. */
  hasRoom(): boolean;
}

export interface QueueConsumer {
  readonly tag: string;
  readonly channel: ConsumerChannel;
  readonly noAck: boolean;
  readonly exclusive: boolean;
  /** Unacked deliveries this consumer may hold; 0 = unlimited. */
  readonly prefetch: number;
  unacked: number;
}

/** How a queue reaches back into its broker: dead-lettering and its own removal. */
export interface QueueOwner {
  deadLetter(queue: MemoryQueue, entry: QueuedMessage, reason: DeathReason): void;
  removeQueue(queue: MemoryQueue): void;
}

export type DeathReason = 'rejected' | 'expired' | 'maxlen';

export interface QueueSettings {
  readonly durable: boolean;
  readonly autoDelete: boolean;
  /** The connection that owns an exclusive queue (any object identifying it), or undefined. */
  readonly owner: object | undefined;
  readonly arguments: Record<string, unknown>;
}

/**
 * A classic queue: FIFO, consumers served round robin within their prefetch, requeued messages
 * back in their original place, TTL at the head, max-length, dead-lettering through its broker.
 */
export class MemoryQueue {
  private readonly ready = new ReadyList();
  /** Consumers that can take a message now, in round-robin order. */
  private rotation: QueueConsumer[] = [];
  /** Every consumer, in the order they subscribed. */
  private readonly consumers = new Set<QueueConsumer>();
  private seq = 0;
  private hadConsumer = false;
  private expiryTimer?: NodeJS.Timeout;
  private expiryAt?: number;
  private idleTimer?: NodeJS.Timeout;
  private deleted = false;
  readonly messageTtl?: number;
  readonly deadLetterExchange?: string;
  readonly deadLetterRoutingKey?: string;
  private readonly maxLength?: number;
  private readonly maxLengthBytes?: number;
  private readonly overflow: string;
  private readonly expires?: number;
  private readonly maxPriority?: number;
  private readonly singleActiveConsumer: boolean;

  constructor(
    readonly name: string,
    readonly settings: QueueSettings,
    private readonly owner: QueueOwner,
  ) {
    const args = settings.arguments;
    this.messageTtl = nonNegativeInteger(args['x-message-ttl']);
    this.deadLetterExchange =
      typeof args['x-dead-letter-exchange'] === 'string' ? args['x-dead-letter-exchange'] : undefined;
    this.deadLetterRoutingKey =
      typeof args['x-dead-letter-routing-key'] === 'string' ? args['x-dead-letter-routing-key'] : undefined;
    this.maxLength = nonNegativeInteger(args['x-max-length']);
    this.maxLengthBytes = nonNegativeInteger(args['x-max-length-bytes']);
    this.overflow = typeof args['x-overflow'] === 'string' ? args['x-overflow'] : 'drop-head';
    this.expires = nonNegativeInteger(args['x-expires']);
    this.maxPriority = nonNegativeInteger(args['x-max-priority']);
    this.singleActiveConsumer = args['x-single-active-consumer'] === true;
    this.touch();
  }

  get messageCount(): number {
    return this.ready.length;
  }

  /** Up to `count` ready messages in delivery order, left in the queue; expired ones are not shown. */
  peek(count: number): QueuedMessage[] {
    const now = Date.now();
    return this.ready
      .list()
      .filter((entry) => entry.expiresAt === undefined || entry.expiresAt > now)
      .slice(0, count);
  }

  get consumerCount(): number {
    return this.consumers.size;
  }

  get exclusiveOwner(): object | undefined {
    return this.settings.owner;
  }

  /**
   * Takes a routed message. False when the queue refuses it (`x-overflow: reject-publish` and
   * full): the publisher gets a nack.
   */
  enqueue(message: StoredMessage): boolean {
    if (this.deleted) return true;
    if (this.overflow !== 'drop-head' && this.isFull(message.content.length)) {
      if (this.overflow === 'reject-publish-dlx') {
        this.owner.deadLetter(this, this.entry(message), 'maxlen');
      }
      return false;
    }
    const entry = this.entry(message);
    // A consumer that can take it now gets it at once: a TTL of 0 still reaches a waiting consumer.
    const consumer = this.ready.length === 0 ? this.nextConsumer() : undefined;
    if (consumer) {
      this.deliverTo(consumer, entry);
      return true;
    }
    this.insert(entry);
    this.dispatch();
    if (this.overflow === 'drop-head') this.dropOverflow();
    this.scheduleExpiry();
    return true;
  }

  /** Puts unacked messages back, each at its original place, marked redelivered. */
  requeue(entries: QueuedMessage[]): void {
    if (this.deleted || entries.length === 0) return;
    for (const entry of entries) {
      entry.redelivered = true;
      this.insert(entry);
    }
    this.dispatch();
  }

  /** A delivery that will not come back (rejected or nacked without requeue). */
  discard(entry: QueuedMessage): void {
    if (!this.deleted) this.owner.deadLetter(this, entry, 'rejected');
  }

  /**
   * A delivery of `consumer` has been settled: it may take more (it rejoins the rotation at the
   * end). The caller dispatches once it has also requeued what it nacked.
   */
  release(consumer: QueueConsumer): void {
    consumer.unacked--;
    if (this.consumers.has(consumer) && !this.rotation.includes(consumer) && hasCapacity(consumer)) {
      this.rotation.push(consumer);
    }
  }

  /** Adds a consumer; the caller dispatches once the client has been told its tag (consume-ok first). */
  addConsumer(consumer: QueueConsumer): void {
    this.consumers.add(consumer);
    this.rotation.push(consumer);
    this.hadConsumer = true;
    this.touch();
  }

  hasExclusiveConsumer(): boolean {
    for (const c of this.consumers) if (c.exclusive) return true;
    return false;
  }

  /** A consumer cancelled (or its channel closed). An auto-delete queue goes with its last consumer. */
  removeConsumer(consumer: QueueConsumer): void {
    if (!this.consumers.delete(consumer)) return;
    this.rotation = this.rotation.filter((c) => c !== consumer);
    if (this.settings.autoDelete && this.hadConsumer && this.consumers.size === 0) {
      this.owner.removeQueue(this);
      return;
    }
    this.touch();
  }

  /** basic.get: the head message, or undefined when there is none. */
  take(): QueuedMessage | undefined {
    this.touch();
    this.expireHead();
    const entry = this.ready.shift();
    this.scheduleExpiry();
    return entry;
  }

  purge(): number {
    const count = this.ready.length;
    this.ready.clear();
    this.scheduleExpiry();
    return count;
  }

  /** Deletes the queue: its consumers are told, its messages dropped. Returns the ready count. */
  delete(): number {
    if (this.deleted) return 0;
    this.deleted = true;
    const count = this.ready.length;
    this.ready.clear();
    clearTimeout(this.expiryTimer);
    clearTimeout(this.idleTimer);
    const consumers = [...this.consumers];
    this.consumers.clear();
    this.rotation = [];
    for (const c of consumers) c.channel.cancelledByBroker(c);
    return count;
  }

  /** Hands ready messages to consumers with room, round robin; expired ones at the head go first. */
  dispatch(): void {
    for (;;) {
      this.expireHead();
      if (this.ready.length === 0) break;
      const consumer = this.nextConsumer();
      if (!consumer) break;
      this.deliverTo(consumer, this.ready.shift()!);
    }
    this.scheduleExpiry();
  }

  /** The consumer whose turn it is and who has room, or undefined. */
  private nextConsumer(): QueueConsumer | undefined {
    const ready = (c: QueueConsumer) => hasCapacity(c) && c.channel.hasRoom();
    if (this.singleActiveConsumer) {
      // Only the oldest consumer receives; the others wait for it to go.
      const [active] = this.consumers;
      return active && ready(active) ? active : undefined;
    }
    return this.rotation.find(ready);
  }

  private deliverTo(consumer: QueueConsumer, entry: QueuedMessage): void {
    const index = this.rotation.indexOf(consumer);
    if (index >= 0) this.rotation.splice(index, 1);
    if (!consumer.noAck) consumer.unacked++;
    // A consumer at its limit leaves the rotation; it rejoins at the end when it acks.
    if (hasCapacity(consumer)) this.rotation.push(consumer);
    consumer.channel.deliver(consumer, this, entry);
  }

  /** Ready messages are kept by priority (highest first), then in order of arrival. */
  private insert(entry: QueuedMessage): void {
    this.ready.insert(entry);
  }

  private entry(message: StoredMessage): QueuedMessage {
    const now = Date.now();
    const perMessage = message.properties.expiration === undefined ? undefined : Number(message.properties.expiration);
    const ttls = [this.messageTtl, perMessage].filter((t): t is number => t !== undefined);
    const expiresAt = ttls.length > 0 ? now + Math.min(...ttls) : undefined;
    const priority =
      this.maxPriority === undefined
        ? 0
        : Math.min(Math.max(Number(message.properties.priority ?? 0), 0), this.maxPriority);
    return { message, seq: this.seq++, priority, expiresAt, redelivered: false };
  }

  private isFull(extraBytes: number): boolean {
    if (this.maxLength !== undefined && this.ready.length >= this.maxLength) return true;
    if (this.maxLengthBytes !== undefined && this.ready.bytes + extraBytes > this.maxLengthBytes) return true;
    return false;
  }

  private dropOverflow(): void {
    const over = () =>
      (this.maxLength !== undefined && this.ready.length > this.maxLength) ||
      (this.maxLengthBytes !== undefined && this.ready.bytes > this.maxLengthBytes);
    while (this.ready.length > 0 && over()) this.owner.deadLetter(this, this.ready.shift()!, 'maxlen');
  }

  /** RabbitMQ expires messages at the head of the queue only. */
  private expireHead(): void {
    const now = Date.now();
    for (;;) {
      const head = this.ready.first();
      if (head?.expiresAt === undefined || head.expiresAt > now) return;
      this.ready.shift();
      this.owner.deadLetter(this, head, 'expired');
    }
  }

  private scheduleExpiry(): void {
    const at = this.ready.first()?.expiresAt;
    if (at === this.expiryAt) return;
    clearTimeout(this.expiryTimer);
    this.expiryAt = at;
    this.expiryTimer = undefined;
    if (at === undefined || this.deleted) return;
    this.expiryTimer = setTimeout(
      () => {
        this.expiryAt = undefined;
        this.dispatch();
      },
      Math.max(0, at - Date.now()),
    );
    // A message waiting to expire must not keep the process alive.
    this.expiryTimer.unref();
  }

  /**
   * `x-expires`: the queue is deleted once it has had no consumer and no use for that long. A
   * declaration (passive ones included) and a basic.get are uses, as in RabbitMQ.
   */
  touch(): void {
    if (this.expires === undefined || this.deleted) return;
    clearTimeout(this.idleTimer);
    if (this.consumers.size > 0) return;
    this.idleTimer = setTimeout(() => {
      if (this.consumers.size === 0) this.owner.removeQueue(this);
    }, this.expires);
    this.idleTimer.unref();
  }
}

/**
 * The ready messages: by priority (highest first), then in order of arrival. Taking from the head
 * is O(1) (an array with a moving start), so a long backlog drains in linear time.
 */
class ReadyList {
  private items: (QueuedMessage | undefined)[] = [];
  private head = 0;
  /** Total body size, for `x-max-length-bytes`. */
  bytes = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  first(): QueuedMessage | undefined {
    return this.items[this.head];
  }

  /** The ready messages in delivery order, left in place. */
  list(): QueuedMessage[] {
    return this.items.slice(this.head) as QueuedMessage[];
  }

  shift(): QueuedMessage | undefined {
    if (this.head >= this.items.length) return undefined;
    const entry = this.items[this.head]!;
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.bytes -= entry.message.content.length;
    return entry;
  }

  /** Inserts in order; a new message (the common case) goes to the end at once. */
  insert(entry: QueuedMessage): void {
    const before = (a: QueuedMessage, b: QueuedMessage) =>
      a.priority !== b.priority ? a.priority > b.priority : a.seq < b.seq;
    let i = this.items.length;
    while (i > this.head && before(entry, this.items[i - 1]!)) i--;
    this.items.splice(i, 0, entry);
    this.bytes += entry.message.content.length;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }
}

function hasCapacity(consumer: QueueConsumer): boolean {
  return consumer.noAck || consumer.prefetch === 0 || consumer.unacked < consumer.prefetch;
}

function nonNegativeInteger(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

/** RabbitMQ's validation of the queue arguments it knows. */
export function queueArgumentProblem(queue: string, args: Record<string, unknown>): BrokerRefusal | undefined {
  // A stream is an append-only log read from offsets; the in-memory broker has queues only, and a
  // stream that behaved as a queue would let tests pass that fail on RabbitMQ.
  if (args['x-queue-type'] === 'stream') {
    return new BrokerRefusal(
      'PRECONDITION_FAILED',
      `the in-memory broker has no streams (x-queue-type 'stream' for queue '${queue}' in vhost '/'): ` +
        'test stream consumers against RabbitMQ',
    );
  }
  const integers = ['x-message-ttl', 'x-max-length', 'x-max-length-bytes', 'x-expires', 'x-max-priority'];
  for (const key of integers) {
    const value = args[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      return new BrokerRefusal(
        'PRECONDITION_FAILED',
        `invalid arg '${key}' for queue '${queue}' in vhost '/': {unacceptable_type,${typeof value}}`,
      );
    }
    const min = key === 'x-expires' ? 1 : 0;
    if (value < min) {
      const why = min === 1 ? `{value_zero,${value}}` : `{value_negative,${value}}`;
      return new BrokerRefusal('PRECONDITION_FAILED', `invalid arg '${key}' for queue '${queue}' in vhost '/': ${why}`);
    }
  }
  const overflow = args['x-overflow'];
  if (overflow !== undefined && !['drop-head', 'reject-publish', 'reject-publish-dlx'].includes(String(overflow))) {
    return new BrokerRefusal(
      'PRECONDITION_FAILED',
      `invalid arg 'x-overflow' for queue '${queue}' in vhost '/': {invalid_overflow,<<"${String(overflow)}">>}`,
    );
  }
  return undefined;
}

import type { Channel, ConsumeMessage, MessageProperties } from 'amqplib';
import { decodeHeaderDates } from '../codec/header-dates.js';
import { DELAY_HEADERS, isDelayLadderExchange } from '../topology/delay-ladder.js';
import { ATTEMPT_HEADER, FAILURE_HEADERS } from '../topology/failure-policy.js';

/** Set by WarrenContext's static block: the module's own access to its private settled state. */
let settleContext: (context: WarrenContext) => void;
let hookContext: (context: WarrenContext, hook: () => void) => void;

/**
 * What a handler knows about the delivery it is handling: the second argument of every handler
 * (or `@Ctx()`).
 */
export class WarrenContext {
  private decodedHeaders?: Record<string, unknown>;
  /**
   * Settled by the handler, the failure policy, or one `multiple` ack of a whole batch; and who is
   * told then (a batch consumer's record of what its channel holds unacked). Fields of the
   * context rather than a WeakSet and WeakMap beside it: those cost a hash lookup and an
   * ephemeron entry per delivery (issue 18's profile: `markSettled` 1.2 % of RPC throughput).
   * ES private, so a context shows nothing of them to a handler.
   */
  #settled = false;
  #onSettled: (() => void) | undefined = undefined;

  static {
    settleContext = (context) => {
      if (context.#settled) return;
      context.#settled = true;
      const hook = context.#onSettled;
      context.#onSettled = undefined;
      hook?.();
    };
    hookContext = (context, hook) => {
      context.#onSettled = hook;
    };
  }

  constructor(
    readonly message: ConsumeMessage,
    readonly queue: string,
    private readonly channel: Channel,
  ) {}

  /**
   * The exchange the message was first published to, on every attempt: a retried copy comes back
   * through the default exchange, and a redrive from the dead-letter queue usually does too, but
   * both carry the original route in Warren's headers. Those headers are believed only for a
   * delivery sent to its queue by name — through the default exchange (which is how Warren's
   * retries arrive), or through the delay ladder to a queue (a retry that waited there): a message
   * routed by a named exchange is reported as routed, whatever headers its publisher wrote.
   * A delayed message arrives through the delay ladder's exchange (the dead-letter exchange of
   * the last queue it waited in): it is reported by the exchange it was published to, which the
   * ladder carries in a header of its own (`""` for one sent to a queue).
   */
  get exchange(): string {
    const delivered = this.message.fields.exchange;
    if (isDelayLadderExchange(delivered)) {
      const headers = this.message.properties.headers;
      const target = headers?.[DELAY_HEADERS.exchange];
      if (typeof target === 'string') return target;
      // Sent to a queue by name through the ladder: a retry's route headers are believed, as on the default exchange.
      if (typeof headers?.[DELAY_HEADERS.queue] === 'string') return this.original(FAILURE_HEADERS.exchange, '');
      return delivered;
    }
    return this.original(FAILURE_HEADERS.exchange, delivered);
  }

  /** The routing key the message was first published with, on every attempt (see `exchange`). */
  get routingKey(): string {
    return this.original(FAILURE_HEADERS.routingKey, this.message.fields.routingKey);
  }

  /**
   * The exchange of this very delivery: `""` for a retried copy (the retry queues re-route through
   * the default exchange), a `warren.delay.*` exchange for a delayed message.
   */
  get deliveryExchange(): string {
    return this.message.fields.exchange;
  }

  /** The routing key of this very delivery: the queue's name for a retried copy. */
  get deliveryRoutingKey(): string {
    return this.message.fields.routingKey;
  }

  /** 1 for the first delivery, 2 for the first retry, …: Warren's count, not the broker's redeliveries. */
  get attempt(): number {
    const value = Number(this.message.properties.headers?.[ATTEMPT_HEADER]);
    return Number.isInteger(value) && value > 0 ? value : 1;
  }

  get redelivered(): boolean {
    return this.message.fields.redelivered;
  }

  get deliveryTag(): number {
    return this.message.fields.deliveryTag;
  }

  /** The message's properties as amqplib decoded them (a timestamp in seconds; see `timestamp`, `headers`). */
  get properties(): MessageProperties {
    return this.message.properties;
  }

  /**
   * The message's headers, with every AMQP timestamp (at any depth) as a `Date`: a Date header
   * published by Warren comes back a Date. `message.properties.headers` keeps amqplib's
   * `{ '!': 'timestamp', value }`.
   */
  get headers(): Record<string, unknown> {
    return (this.decodedHeaders ??= decodeHeaderDates(this.message.properties.headers ?? {}));
  }

  /** The message's `timestamp` property (whole seconds in AMQP) as a `Date`; undefined when it has none. */
  get timestamp(): Date | undefined {
    const seconds: unknown = this.message.properties.timestamp;
    return typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000) : undefined;
  }

  /** True once the delivery has been acked or nacked; Warren then leaves it alone. */
  get isSettled(): boolean {
    return this.#settled;
  }

  ack(): void {
    this.settle(() => this.channel.ack(this.message));
  }

  nack(options: { requeue?: boolean } = {}): void {
    this.settle(() => this.channel.nack(this.message, false, options.requeue ?? false));
  }

  private original(header: string, delivered: string): string {
    if (!this.sentByQueueName()) return delivered;
    const value = this.message.properties.headers?.[header];
    return typeof value === 'string' ? value : delivered;
  }

  /**
   * Whether this delivery was sent to its queue by name: through the default exchange (a retry, a
   * redrive), or through the delay ladder to a queue (a retry with `retryThrough: 'delay-ladder'`,
   * a delayed `sendToQueue`). Only then are Warren's route headers believed.
   */
  private sentByQueueName(): boolean {
    const delivered = this.message.fields.exchange;
    if (delivered === '') return true;
    return (
      isDelayLadderExchange(delivered) && typeof this.message.properties.headers?.[DELAY_HEADERS.queue] === 'string'
    );
  }

  private settle(action: () => void): void {
    if (this.isSettled) return;
    markSettled(this);
    try {
      action();
    } catch {
      // The channel died with the delivery on it: the broker requeues the message by itself.
    }
  }
}

/** Warren's own (not exported by the package): `hook` runs once `context` is settled, however that happens. */
export function onSettled(context: WarrenContext, hook: () => void): void {
  hookContext(context, hook);
}

/**
 * Warren's own (not exported by the package): records `context` as settled by an ack sent for it
 * with others' (one `multiple` ack of a batch), so that nothing acks it a second time.
 */
export function markSettled(context: WarrenContext): void {
  settleContext(context);
}

import { Inject, Injectable } from '@nestjs/common';
import type { ChannelWrapper } from 'amqp-connection-manager';
import type { ConfirmChannel, Message, Options } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { WarrenConnection } from '../connection/warren-connection.js';
import { redactCredentials } from '../connection/redact.js';
import {
  exchangeNamedBy,
  isChannelClosedOnPublish,
  isPublishNacked,
  isWrapperClosedOnPublish,
  maxMessageSizeNamedBy,
  publishConfirmed,
  settleEncodeFailures,
} from '../connection/amqp-compat.js';
import { PublishError, UnroutableError } from '../warren.errors.js';
import { type EventContract, isEventContract } from '../contracts/contracts.js';
import { WARREN_MODULE_OPTIONS, type WarrenModuleOptions } from '../warren.options.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';
import { contractTarget, type OutgoingRules, prepareOutgoing, targetOf } from './outgoing-message.js';
import { MessageCodecs } from '../codec/codecs.js';
import { encodeHeaderDates, propertiesProblem } from './amqp-headers.js';
import { inSpan, instruments, tracer } from '../telemetry/telemetry.js';
import { endSpan, startPublishSpan } from '../telemetry/spans.js';
import type { Tracer } from '../telemetry/otel-types.js';
import { DelayedDelivery } from './delayed-delivery.js';
import { type DelayTarget, delayLadderShape, delayRoute } from '../topology/delay-ladder.js';

export interface PublishOptions {
  /** Default true: the broker writes the message to disk in a durable queue. */
  persistent?: boolean;
  /** `text/plain` sends a string payload as raw UTF-8, as the tutorials' other-language programs expect. */
  contentType?: string;
  /**
   * With @opentelemetry/api installed, the active context's `traceparent` (and `tracestate`) are
   * added, unless these headers carry a `traceparent` of their own.
   */
  headers?: Record<string, unknown>;
  /** Default: a fresh UUID, so consumers can recognise a redelivered message. */
  messageId?: string;
  correlationId?: string;
  replyTo?: string;
  /** Per-message TTL in milliseconds. Not with `delay`: the message would expire while it waits. */
  expiration?: number;
  /**
   * Deliver the message this many milliseconds from now, counted in whole seconds rounded up (never
   * early), through the delay ladder: queues with a TTL each, on a stock RabbitMQ, declared on the
   * first delayed publish (guide: "Delayed delivery"). Confirmed once the ladder holds it. 0 or
   * none: at once.
   */
  delay?: number;
  priority?: number;
  type?: string;
  appId?: string;
  /**
   * Default false: a message no queue takes (no binding matches, the queue does not exist) is
   * dropped by the broker and `publish()` resolves. With `true` the broker returns it instead and
   * `publish()` rejects with an `UnroutableError` naming the exchange and routing key.
   */
  mandatory?: boolean;
}

/**
 * A message the broker confirmed, as the Publisher sent it; a delayed one under the exchange it is
 * going to (the ladder's headers show its delay), not the ladder's it entered.
 */
export interface PublishedMessage {
  exchange: string;
  routingKey: string;
  content: Buffer;
  properties: Options.Publish;
}

/** Sends of one message after connection losses before its publish fails for good. */
const MAX_PUBLISH_ATTEMPTS = 5;

/**
 * Publishes on the app's publishing connection through a confirm channel: `publish()` resolves
 * once the broker has taken responsibility for the message, and rejects if it refuses it.
 * While the connection is down, messages wait in memory and go out after reconnect.
 */
@Injectable()
export class Publisher {
  private readonly channel: ChannelWrapper;
  private readonly rules: OutgoingRules;
  private readonly maxBuffered: number;
  private readonly observers = new Set<(message: PublishedMessage) => void>();
  /** The connection's codecs, by content type (the testing kit decodes what was published with them). */
  readonly codecs: MessageCodecs;
  /** Why the broker closed the current channel, if it did (404 for an unknown exchange...). */
  private refusal?: Error;
  /**
   * Mandatory publishes waiting for their confirm, by exchange, routing key and message id. The
   * broker sends a message's basic.return before its basic.ack, on the same channel, so a publish
   * is known to be returned by the time its confirm arrives.
   */
  private readonly awaitingReturn = new Map<string, { returned?: string }[]>();
  private readonly delayed: DelayedDelivery;
  /** Until the boot has declared the topology (`waitForBroker: false`): what publishes wait for. */
  private gate?: Promise<void>;
  /** Publishes waiting for the gate, counted against `maxBufferedPublishes`. */
  private held = 0;

  constructor(connection: WarrenConnection, @Inject(WARREN_MODULE_OPTIONS) options: WarrenModuleOptions) {
    this.channel = connection.createChannel(
      'publish',
      {
        name: 'publisher',
        confirm: true,
        setup: (channel: ConfirmChannel) => {
          // A fresh channel: the last one's refusal is history.
          this.refusal = undefined;
          settleEncodeFailures(channel);
          channel.on('return', (msg: Message) => this.onReturn(msg));
        },
      },
      (err) => (this.refusal = err),
    );
    this.codecs = new MessageCodecs(options.codecs);
    this.rules = { maxBytes: options.maxMessageBytes ?? WARREN_DEFAULTS.maxMessageBytes, codecs: this.codecs };
    this.maxBuffered = options.maxBufferedPublishes ?? WARREN_DEFAULTS.maxBufferedPublishes;
    connection.addGauge('buffered', () => this.buffered);
    this.delayed = new DelayedDelivery(connection, this.channel, delayLadderShape(options.delayLadder));
  }

  /** Publishes `payload` to `exchange` with `routingKey`; resolves on the broker's confirm. */
  publish<T>(event: EventContract<T>, payload: NoInfer<T>, options?: PublishOptions): Promise<void>;
  publish(exchange: string, routingKey: string, payload: unknown, options?: PublishOptions): Promise<void>;
  publish(
    target: string | EventContract<unknown>,
    keyOrPayload: unknown,
    payloadOrOptions?: unknown,
    maybeOptions?: PublishOptions,
  ): Promise<void> {
    // Not an async function, for one promise less a publish: every throw below must still reject.
    try {
      if (isEventContract(target)) return this.publishContract(target, keyOrPayload, payloadOrOptions);
      const routingKey = keyOrPayload as string;
      const options = maybeOptions ?? NO_OPTIONS;
      const properties = publishProperties(options);
      if (tracer) return this.traced(tracer, target, routingKey, payloadOrOptions, properties, options.delay);
      const content = prepareOutgoing('publish', target, routingKey, payloadOrOptions, properties, this.rules);
      return this.dispatch(target, routingKey, content, properties, options.delay);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  private async publishContract(target: EventContract<unknown>, payload: unknown, options: unknown): Promise<void> {
    const [exchange, routingKey, checked] = await contractTarget(target, payload);
    return this.publish(exchange, routingKey, checked, options as PublishOptions | undefined);
  }

  /** Sends `payload` straight to `queue` through the default exchange. */
  async sendToQueue(queue: string, payload: unknown, options: PublishOptions = NO_OPTIONS): Promise<void> {
    const properties = publishProperties(options);
    if (tracer) return this.traced(tracer, '', queue, payload, properties, options.delay);
    const content = prepareOutgoing('publish', '', queue, payload, properties, this.rules);
    await this.dispatch('', queue, content, properties, options.delay);
  }

  /**
   * A publish in a span of its own, whose context the message carries (an SDK is registered); a
   * delayed one too, named by where it is going: the span ends once the ladder holds it.
   */
  private async traced(
    tracer: Tracer,
    exchange: string,
    routingKey: string,
    payload: unknown,
    properties: Options.Publish,
    delay: number | undefined,
  ): Promise<void> {
    const span = startPublishSpan(tracer, exchange, routingKey, properties.messageId);
    try {
      const content = inSpan(span, () =>
        prepareOutgoing('publish', exchange, routingKey, payload, properties, this.rules),
      );
      await this.dispatch(exchange, routingKey, content, properties, delay);
    } catch (err) {
      endSpan(span, err);
      throw err;
    }
    endSpan(span);
  }

  /** A prepared message goes out at once, or with a `delay` into the delay ladder. */
  private dispatch(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: Options.Publish,
    delay: number | undefined,
  ): Promise<void> {
    return delay
      ? this.sendDelayed(exchange, routingKey, content, properties, delay)
      : this.send(exchange, routingKey, content, properties);
  }

  /**
   * Sends a checked, encoded message into the delay ladder, with the headers that take it down the
   * ladder and then to its exchange (or, on the default exchange, its queue) with its routing key.
   */
  private async sendDelayed(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: Options.Publish,
    delay: number,
  ): Promise<void> {
    const where = `Cannot publish to ${targetOf(exchange, routingKey)} with a delay`;
    const target: DelayTarget = exchange === '' ? { queue: routingKey } : { exchange };
    const route = delayRoute(delay, target, this.delayed.shape);
    if ('problem' in route) throw new PublishError(`${where}: ${route.problem}`);
    if (properties.expiration !== undefined) {
      throw new PublishError(`${where}: expiration cannot be combined with delay (it would expire while it waits)`);
    }
    properties.headers = { ...withoutDelayHistory(properties.headers), ...route.headers };
    // A destination the boot is still declaring (waitForBroker: false) is bound once it exists.
    if (this.gate !== undefined) await this.gate;
    try {
      await this.delayed.ready(target);
    } catch (err) {
      const reason = (err as Error).message;
      const cause = (err as Error).cause ?? err;
      throw new PublishError(
        `${where}: the broker refused the delay ladder's declarations: ${reason}${missingExchangeHint(cause as Error, exchange)}`,
        { cause },
      );
    }
    try {
      // Observers (the testing kit's recordPublished) hear of it by where it is going, not by the ladder.
      await this.send(route.exchange, routingKey, content, properties, exchange);
    } catch (err) {
      // Someone may have deleted the ladder: the next delayed publish declares it again.
      this.delayed.forget();
      throw err;
    }
  }

  /**
   * Publishes bytes with exactly the given properties, confirmed by the broker. For moving
   * messages as they are (retries, dead letters); `publish()` is the API for payloads. Properties
   * AMQP cannot carry are refused as `publish()` refuses them.
   */
  async publishRaw(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: Options.Publish,
    /** Through the delay ladder (a retry that waits there): arrives after this many ms. */
    delay?: number,
  ): Promise<void> {
    const problem = propertiesProblem(properties);
    if (problem) throw new PublishError(`Cannot publish to ${targetOf(exchange, routingKey)}: ${problem}`);
    await this.dispatch(
      exchange,
      routingKey,
      content,
      { ...properties, headers: encodeHeaderDates(properties.headers) },
      delay,
    );
  }

  /** Messages waiting in memory for the broker (sent but unconfirmed ones not included). */
  get buffered(): number {
    return this.channel.queueLength() + this.held;
  }

  /**
   * Holds publishes until `declared` settles. An app booted without the broker connects its two
   * connections independently: publishes buffered meanwhile would otherwise reach the broker
   * as soon as the publishing connection is up, before the consuming one has declared the queues
   * and bindings they are meant for, and be dropped as unroutable. Settling either way releases
   * them (a refused declaration is logged; the publishes then meet the broker as it is).
   */
  holdUntil(declared: Promise<unknown>): void {
    const gate = declared.then(
      () => undefined,
      () => undefined,
    );
    this.gate = gate;
    void gate.then(() => {
      if (this.gate === gate) this.gate = undefined;
    });
  }

  /** Calls `listener` after every publish the broker confirmed; returns the unsubscriber. */
  observe(listener: (message: PublishedMessage) => void): () => void {
    this.observers.add(listener);
    return () => this.observers.delete(listener);
  }

  private send(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: Options.Publish,
    observedExchange = exchange,
  ): Promise<void> {
    // While the broker is unreachable every publish waits in memory: bounded, so an outage
    // becomes a clear error at the caller instead of an unbounded heap.
    if (this.channel.queueLength() + this.held >= this.maxBuffered) {
      return Promise.reject(
        new PublishError(
          `Cannot publish to ${targetOf(exchange, routingKey)}: ${this.maxBuffered} messages ` +
            `are already waiting for the broker (maxBufferedPublishes)`,
        ),
      );
    }
    // The common case (no boot gate, not mandatory, no SDK's meter, nobody observing): the
    // channel's own promise, and the resend loop below only once a send has failed.
    if (this.gate === undefined && !properties.mandatory && !instruments && this.observers.size === 0) {
      const sent =
        publishConfirmed(this.channel, exchange, routingKey, content, properties) ??
        this.channel.publish(exchange, routingKey, content, properties);
      return sent.then(
        () => undefined,
        (err: unknown) => {
          const retry = this.failedPublish(err, exchange, routingKey, content.length, 1);
          if (retry instanceof Error) throw retry;
          return this.sendWithRetries(exchange, routingKey, content, properties, observedExchange, 2);
        },
      );
    }
    return this.sendWithRetries(exchange, routingKey, content, properties, observedExchange, 1);
  }

  private async sendWithRetries(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: Options.Publish,
    observedExchange: string,
    firstAttempt: number,
  ): Promise<void> {
    const startedAt = instruments ? performance.now() : 0;
    if (this.gate !== undefined) {
      // In order: the held publishes resume in the order they came, before any later one.
      this.held++;
      try {
        await this.gate;
      } finally {
        this.held--;
      }
    }
    const watched = properties.mandatory ? this.watchReturn(exchange, routingKey, properties.messageId) : undefined;
    try {
      for (let attempt = firstAttempt; ; attempt++) {
        try {
          await (publishConfirmed(this.channel, exchange, routingKey, content, properties) ??
            this.channel.publish(exchange, routingKey, content, properties));
          break;
        } catch (err) {
          const retry = this.failedPublish(err, exchange, routingKey, content.length, attempt);
          if (retry instanceof Error) {
            instruments?.published(exchange, startedAt, retry);
            throw retry;
          }
        }
      }
    } finally {
      watched?.stop();
    }
    if (watched?.entry.returned) {
      const unroutable = new UnroutableError(exchange, routingKey, watched.entry.returned);
      instruments?.published(exchange, startedAt, unroutable);
      throw unroutable;
    }
    instruments?.published(exchange, startedAt);
    if (this.observers.size > 0) {
      for (const observer of this.observers) observer({ exchange: observedExchange, routingKey, content, properties });
    }
  }

  /**
   * What a failed publish means: a PublishError for the caller, or `true` to send it again.
   * amqplib fails every unconfirmed publish of a channel that closes ("channel closed"). When the
   * broker closed it because of this very publish (an unknown exchange or no write permission,
   * named in its reason; a message over its max_message_size, known by its size), that is the
   * caller's error. Otherwise — the connection was lost, or the broker closed the channel for
   * another publish — the broker may or may not have the message: it goes out again on the fresh
   * channel (at least once: consumers may see it twice, with the same messageId), a bounded number
   * of times, and then fails saying its fate is unknown. Never "refused" for a message that may
   * have got through.
   */
  private failedPublish(
    err: unknown,
    exchange: string,
    routingKey: string,
    size: number,
    attempt: number,
  ): PublishError | true {
    const target = targetOf(exchange, routingKey);
    const message = err instanceof Error ? err.message : String(err);
    if (isChannelClosedOnPublish(err)) {
      const refusal = this.refusal;
      if (refusal && this.refusedThis(refusal, exchange, size)) {
        return new PublishError(
          `Cannot publish to ${target}: the broker refused it: ${refusal.message}${missingExchangeHint(refusal, exchange)}`,
          { cause: refusal },
        );
      }
      if (attempt < MAX_PUBLISH_ATTEMPTS) return true;
      const why = refusal ? `the broker closed the channel (${refusal.message})` : 'the connection was lost';
      return new PublishError(
        `Cannot publish to ${target}: ${why} ${attempt} times before the broker confirmed it; ` +
          `it may or may not have been delivered`,
        { cause: refusal ?? err },
      );
    }
    if (isWrapperClosedOnPublish(err)) {
      return new PublishError(
        `Cannot publish to ${target}: the app shut down before the broker confirmed it; it may or may not have been delivered`,
        { cause: err },
      );
    }
    if (isPublishNacked(err)) {
      return new PublishError(
        `Cannot publish to ${target}: the broker did not accept it (nack: e.g. a queue at its x-max-length with overflow reject-publish)`,
        { cause: err },
      );
    }
    return new PublishError(`Cannot publish to ${target}: ${redactCredentials(message)}`, { cause: err });
  }

  private watchReturn(exchange: string, routingKey: string, messageId: string | undefined) {
    const key = returnKey(exchange, routingKey, messageId);
    const entry: { returned?: string } = {};
    const entries = this.awaitingReturn.get(key) ?? [];
    entries.push(entry);
    this.awaitingReturn.set(key, entries);
    const stop = () => {
      const left = (this.awaitingReturn.get(key) ?? []).filter((e) => e !== entry);
      if (left.length > 0) this.awaitingReturn.set(key, left);
      else this.awaitingReturn.delete(key);
    };
    return { entry, stop };
  }

  /** A returned message marks the first publish waiting with its exchange, routing key and id. */
  private onReturn(msg: Message): void {
    const { exchange, routingKey } = msg.fields;
    const entries = this.awaitingReturn.get(returnKey(exchange, routingKey, msg.properties.messageId as unknown));
    const entry = entries?.find((e) => e.returned === undefined);
    if (!entry) return;
    const { replyCode, replyText } = msg.fields as { replyCode?: number; replyText?: string };
    entry.returned = `${replyCode ?? 312} ${replyText ?? 'NO_ROUTE'}`;
  }

  /** Whether the broker's reason for closing the channel names this publish. */
  private refusedThis(refusal: Error, exchange: string, size: number): boolean {
    const named = exchangeNamedBy(refusal);
    if (named !== undefined) return named === exchange;
    const maxSize = maxMessageSizeNamedBy(refusal);
    return maxSize !== undefined && size > maxSize;
  }
}

const NO_OPTIONS: PublishOptions = Object.freeze({});

function returnKey(exchange: string, routingKey: string, messageId: unknown): string {
  return JSON.stringify([exchange, routingKey, typeof messageId === 'string' ? messageId : '']);
}

/**
 * A message's headers without what a previous trip through a delay ladder (or a dead-lettering)
 * left on it: a handler that publishes a delivered message again with a delay starts afresh.
 * RabbitMQ drops a message dead-lettered into a queue its `x-death` already names without a
 * rejection between (a cycle), so old deaths would lose it in the ladder; old level headers
 * would route it by the old delay.
 */
function withoutDelayHistory(headers: Options.Publish['headers']): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name === 'x-death' || /^x-(first|last)-death-/.test(name) || name.startsWith('warren-delay-')) continue;
    kept[name] = value;
  }
  return kept;
}

/** For a 404 on an exchange nobody declared: how to declare it. */
function missingExchangeHint(refusal: Error, exchange: string): string {
  if ((refusal as { code?: unknown }).code !== 404 || exchange === '') return '';
  return (
    `. Declare the exchange: WarrenModule.forRoot({ topology: { contracts: [YourEvent] } }) for a contract, ` +
    `or { topology: { exchanges: [{ name: '${exchange}', type: 'topic' }] } }, or subscribe a handler to it`
  );
}

/**
 * A publish's properties before `prepareOutgoing()` completes them: persistent, with a fresh
 * message id, unless the caller says otherwise. `contentType` and `headers` are still the caller's.
 */
function publishProperties(options: PublishOptions): Options.Publish {
  return {
    persistent: options.persistent ?? true,
    contentType: options.contentType,
    headers: options.headers,
    messageId: options.messageId ?? randomUUID(),
    correlationId: options.correlationId,
    replyTo: options.replyTo,
    expiration: options.expiration,
    priority: options.priority,
    type: options.type,
    appId: options.appId,
    mandatory: options.mandatory,
    timestamp: Math.floor(Date.now() / 1000),
  };
}

import { type BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConsumeMessage, Message, Options } from 'amqplib';
import { randomBytes } from 'node:crypto';
import { WarrenConnection } from '../connection/warren-connection.js';
import { exchangeNamedBy, publishUnconfirmed } from '../connection/amqp-compat.js';
import { redactCredentials } from '../connection/redact.js';
import { MessageCodecs } from '../codec/codecs.js';
import { PublishError } from '../warren.errors.js';
import { type OutgoingRules, prepareOutgoing, schemaChecked } from '../publisher/outgoing-message.js';
import { WARREN_MODULE_OPTIONS, warrenLoggerContext, type WarrenModuleOptions } from '../warren.options.js';
import { isRpcContract, type RpcContract } from '../contracts/contracts.js';
import {
  RpcChannelLostError,
  RpcClientClosedError,
  RpcNoRouteError,
  RpcRemoteError,
  RpcTimeoutError,
  RpcUnavailableError,
} from './rpc-errors.js';
import { RPC_ERROR_HEADER, type RpcErrorBody } from './rpc-wire.js';
import { CallDeadlines, type Deadline } from './call-deadlines.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';
import { inSpan, instruments, tracer } from '../telemetry/telemetry.js';
import { endSpan, startRpcSpan } from '../telemetry/spans.js';
import { ATTR } from '../telemetry/attributes.js';
import type { Span } from '../telemetry/otel-types.js';

export interface RpcCallOptions {
  /** Milliseconds to wait for the reply. Default: the module's `rpc.timeoutMs` (10 000). */
  timeout?: number;
  /** Aborts the call: it rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Sent with the request; trace context is added as for `Publisher.publish()`. */
  headers?: Record<string, unknown>;
  /**
   * The request's content type, which chooses its codec (the module's `codecs`, or the built-in
   * JSON and text). The server replies in the same type when it has a codec for it. Default JSON.
   */
  contentType?: string;
}

const NO_OPTIONS: RpcCallOptions = Object.freeze({});

/** The longest a Node.js timer can wait (2^31 - 1 ms, 24.8 days): a longer one fires at once. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * A call's timeout as timers and the request's expiration can use it: a whole number of
 * milliseconds, at most MAX_TIMER_MS (longer ones wait that long). Or why it is unusable: a bad
 * value would become an expiration the broker refuses by closing the channel every call shares.
 */
function callTimeout(value: unknown): number | string {
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    return `timeout must be a positive number of milliseconds, not ${typeof value === 'number' ? value : typeof value}`;
  }
  return Math.min(Math.ceil(value), MAX_TIMER_MS);
}

/** How an RPC call's span and metrics name its end (`warren.rpc.outcome`). */
function rpcOutcomeOf(err: unknown): string {
  if (err instanceof RpcTimeoutError) return 'timeout';
  if (err instanceof RpcRemoteError) return 'remote-error';
  if (err instanceof RpcNoRouteError) return 'no-route';
  if (err instanceof RpcChannelLostError) return 'channel-lost';
  if (err instanceof RpcClientClosedError) return 'closed';
  if (err instanceof RpcUnavailableError) return 'unavailable';
  if (err instanceof PublishError) return 'refused';
  // An AbortSignal's default reason; a reason of the caller's own, or a reply that cannot be decoded.
  return (err as { name?: unknown } | undefined)?.name === 'AbortError' ? 'aborted' : 'error';
}

function endRpcSpan(span: Span, outcome: string, err?: unknown): void {
  span.setAttribute(ATTR.rpcOutcome, outcome);
  endSpan(span, err);
}

/** RabbitMQ's pseudo-queue for replies that go straight to the calling channel. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

interface PendingCall extends Deadline {
  resolve(value: unknown): void;
  reject(err: Error): void;
  queue: string;
  /** Where the request went: '' for the default exchange. */
  exchange: string;
  correlationId: string;
  timeoutMs: number;
  cleanup?: () => void;
}

/**
 * The client half of RPC. All calls share ONE reply queue (RabbitMQ's direct reply-to by default,
 * or an exclusive server-named queue with `rpc.replyQueue: 'exclusive'`) and are told apart by
 * their correlation id: a reply finds its call with one map lookup.
 */
@Injectable()
export class RpcClient implements BeforeApplicationShutdown {
  private readonly logger: Logger;
  private readonly pending = new Map<string, PendingCall>();
  private readonly deadlines = new CallDeadlines<PendingCall>((call) => {
    if (this.pending.get(call.correlationId) !== call) return;
    this.settle(call.correlationId);
    call.reject(new RpcTimeoutError(call.queue, call.timeoutMs));
  });
  private readonly wrapper: ChannelWrapper;
  private readonly idPrefix = randomBytes(6).toString('base64url');
  private readonly mode: 'direct-reply-to' | 'exclusive';
  private readonly defaultTimeout: number;
  private readonly rules: OutgoingRules;
  private sequence = 0;
  /** The reply queue's live name; while an exclusive queue is being (re)declared, calls wait for it. */
  private replyQueue: string | Promise<string> = DIRECT_REPLY_TO;
  private replyQueueReady?: (name: string) => void;
  private closed = false;
  /** Replies that matched no pending call (unknown, duplicate or late), for tests and metrics. */
  discardedReplies = 0;

  constructor(
    private readonly connection: WarrenConnection,
    @Inject(WARREN_MODULE_OPTIONS) options: WarrenModuleOptions,
  ) {
    this.mode = options.rpc?.replyQueue ?? WARREN_DEFAULTS.rpc.replyQueue;
    this.defaultTimeout = options.rpc?.timeoutMs ?? WARREN_DEFAULTS.rpc.timeoutMs;
    this.rules = {
      maxBytes: options.maxMessageBytes ?? WARREN_DEFAULTS.maxMessageBytes,
      codecs: new MessageCodecs(options.codecs),
    };
    this.logger = new Logger(warrenLoggerContext(options));
    // Direct reply-to requires publishing on the channel that consumes the replies: one channel does both.
    this.wrapper = connection.createChannel(
      'publish',
      { name: 'rpc-client', confirm: false, setup: this.setup },
      (err) => this.onRefused(err),
    );
    // The reply queue dies with the connection (direct reply-to and exclusive queues alike): the
    // calls in flight can never get their replies, so they fail now rather than at their timeout.
    // Calls made while disconnected wait in the channel and go out once it is back.
    connection.onEvent('publish', 'disconnect', () => {
      this.failPending((call) => new RpcChannelLostError(call.queue));
      if (this.mode === 'exclusive') this.awaitReplyQueue();
    });
    if (this.mode === 'exclusive') this.awaitReplyQueue();
    connection.addGauge('rpcInFlight', () => this.pending.size);
  }

  /** Number of calls waiting for a reply. */
  get pendingCalls(): number {
    return this.pending.size;
  }

  call<Request, Reply>(
    contract: RpcContract<Request, Reply>,
    payload: NoInfer<Request>,
    options?: RpcCallOptions,
  ): Promise<Reply>;
  call<Reply = unknown>(queue: string, payload: unknown, options?: RpcCallOptions): Promise<Reply>;
  call(
    target: string | RpcContract<unknown, unknown>,
    payload: unknown,
    options: RpcCallOptions = NO_OPTIONS,
  ): Promise<unknown> {
    const contract = isRpcContract(target) ? target : undefined;
    if (contract?.schema) {
      return schemaChecked(contract, contract.schema, payload).then((checked) =>
        this.callChecked(contract, contract.queue, checked, options),
      );
    }
    return this.callChecked(contract, contract ? contract.queue : (target as string), payload, options);
  }

  private callChecked(
    contract: RpcContract<unknown, unknown> | undefined,
    queue: string,
    payload: unknown,
    options: RpcCallOptions,
  ): Promise<unknown> {
    if (typeof queue !== 'string' || queue === '') {
      return Promise.reject(new PublishError('RpcClient.call(): give a queue name or an RPC contract'));
    }
    const exchange = contract?.exchange ?? '';
    const routingKey = contract?.exchange ? (contract.routingKey ?? queue) : queue;
    const timeout = callTimeout(options.timeout ?? this.defaultTimeout);
    if (typeof timeout === 'string') return Promise.reject(new PublishError(`RPC to "${queue}": ${timeout}`));
    const correlationId = `${this.idPrefix}.${++this.sequence}`;
    if (!tracer && !instruments) {
      return this.request(queue, exchange, routingKey, payload, options, timeout, correlationId);
    }
    // An SDK is registered: the call gets its span (whose context the request carries) and metrics.
    const span = tracer && startRpcSpan(tracer, queue, exchange, routingKey, correlationId);
    const startedAt = performance.now();
    const calling = span
      ? inSpan(span, () => this.request(queue, exchange, routingKey, payload, options, timeout, correlationId))
      : this.request(queue, exchange, routingKey, payload, options, timeout, correlationId);
    return calling.then(
      (reply) => {
        if (span) endRpcSpan(span, 'reply');
        instruments?.called(queue, startedAt, 'reply');
        return reply;
      },
      (err: unknown) => {
        const outcome = rpcOutcomeOf(err);
        if (span) endRpcSpan(span, outcome, err);
        instruments?.called(queue, startedAt, outcome, err);
        throw err;
      },
    );
  }

  private request(
    queue: string,
    exchange: string,
    routingKey: string,
    payload: unknown,
    options: RpcCallOptions,
    timeout: number,
    correlationId: string,
  ): Promise<unknown> {
    const properties: Options.Publish = {
      correlationId,
      // Known once the reply queue is (an exclusive one may be being declared).
      replyTo: undefined,
      contentType: options.contentType,
      headers: options.headers,
      // A request nobody picked up before the caller gave up is not worth serving.
      expiration: String(timeout),
      persistent: false,
      // An unroutable request comes back at once (basic.return) instead of waiting out the timeout.
      mandatory: true,
    };
    let content: Buffer;
    try {
      content = prepareOutgoing('rpc', exchange, routingKey, payload, properties, this.rules, queue);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if (this.closed) return Promise.reject(new RpcClientClosedError(queue));
    // Before the first connection (a boot that did not wait for the broker) a request would wait
    // out its whole timeout; during a later outage it waits for the reconnect, within the timeout.
    if (this.connection.connectionGeneration('publish') === 0) return Promise.reject(new RpcUnavailableError(queue));
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    const replyTo = this.replyQueue;
    if (typeof replyTo !== 'string') {
      // An exclusive reply queue is being declared: send once its name is known.
      return replyTo.then((name) =>
        this.send(queue, exchange, routingKey, content, properties, name, timeout, options.signal),
      );
    }
    return this.send(queue, exchange, routingKey, content, properties, replyTo, timeout, options.signal);
  }

  private send(
    queue: string,
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: Options.Publish,
    replyTo: string,
    timeout: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const correlationId = properties.correlationId as string;
    properties.replyTo = replyTo;
    return new Promise((resolve, reject) => {
      const call: PendingCall = {
        resolve,
        reject,
        queue,
        exchange,
        correlationId,
        timeoutMs: timeout,
        cleanup: undefined,
        at: 0,
        list: undefined,
        prev: undefined,
        next: undefined,
      };
      this.deadlines.add(call, timeout);
      if (signal) {
        const onAbort = () => this.settle(correlationId)?.reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        call.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      this.pending.set(correlationId, call);
      try {
        // Straight to the live channel when nothing waits before it; else queued by the wrapper.
        if (publishUnconfirmed(this.wrapper, exchange, routingKey, content, properties)) return;
      } catch (err) {
        this.publishFailed(call, err as Error);
        return;
      }
      this.wrapper
        .publish(exchange, routingKey, content, properties)
        .catch((err: Error) => this.publishFailed(call, err));
    });
  }

  private publishFailed(call: PendingCall, err: Error): void {
    if (this.pending.get(call.correlationId) !== call) return;
    this.settle(call.correlationId);
    call.reject(new PublishError(`RPC to "${call.queue}": ${redactCredentials(err.message)}`, { cause: err }));
  }

  /**
   * Refuses new calls and fails the pending ones with RpcClientClosedError. The channel closes
   * with the connection: closing it here too would race that close under NestJS 11, which runs a
   * module's shutdown hooks concurrently.
   */
  close(): void {
    this.closed = true;
    this.failPending((call) => new RpcClientClosedError(call.queue));
  }

  /**
   * At the start of shutdown, when the app's own consumers stop: a call served by this app would
   * otherwise wait out its timeout. (Close an HTTP server before the app so requests in flight can
   * still finish their calls.)
   */
  beforeApplicationShutdown(): void {
    this.close();
  }

  private readonly setup = async (channel: Channel): Promise<void> => {
    channel.on('return', (msg: Message) => this.onReturn(msg));
    await this.consumeReplies(channel);
  };

  private async consumeReplies(channel: Channel): Promise<void> {
    let replyQueue = DIRECT_REPLY_TO;
    if (this.mode === 'exclusive') {
      ({ queue: replyQueue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false }));
    }
    // Replies are consumed without acks: direct reply-to requires it, and a lost reply is a timeout anyway.
    await channel.consume(replyQueue, (msg) => (msg ? this.onReply(msg) : this.onReplyConsumerCancelled(channel)), {
      noAck: true,
    });
    this.replyQueue = replyQueue;
    this.replyQueueReady?.(replyQueue);
    this.replyQueueReady = undefined;
  }

  /**
   * The broker cancelled the replies' consumer (an operator deleted the exclusive reply queue):
   * the calls pending can no longer get their replies, so they fail now; later calls wait for a
   * fresh reply queue, declared and consumed on the same channel, instead of sending a reply_to
   * nobody reads. Should that fail, the channel's reopening or the reconnect runs the setup again.
   */
  private onReplyConsumerCancelled(channel: Channel): void {
    if (this.closed) return;
    this.failPending((call) => new RpcChannelLostError(call.queue));
    if (this.mode === 'exclusive') this.awaitReplyQueue();
    this.logger.warn('the broker cancelled the RPC reply consumer (its reply queue deleted?); consuming replies again');
    this.consumeReplies(channel).catch((err: Error) =>
      this.logger.warn(`RPC reply consumer not restored on this channel: ${redactCredentials(err.message)}`),
    );
  }

  /**
   * The broker closed the channel (a request to an unknown exchange, say): the replies' consumer
   * went with it, so no pending call can get its reply. The request the broker refused fails with
   * its reason, the others as lost; the channel is reopened by the connection (channel-reopening.ts).
   */
  private onRefused(refusal: Error): void {
    this.failPending((call) =>
      call.exchange && exchangeNamedBy(refusal) === call.exchange
        ? new PublishError(`RPC to "${call.queue}": the broker refused the request: ${refusal.message}`, {
            cause: refusal,
          })
        : new RpcChannelLostError(call.queue),
    );
    if (this.mode === 'exclusive') this.awaitReplyQueue();
  }

  private awaitReplyQueue(): void {
    if (typeof this.replyQueue !== 'string') return;
    this.replyQueue = new Promise((resolve) => (this.replyQueueReady = resolve));
  }

  private onReply(msg: ConsumeMessage | null): void {
    if (!msg) return;
    const id = msg.properties.correlationId as string | undefined;
    const call = id === undefined ? undefined : this.settle(id);
    if (!call) {
      this.discardedReplies++;
      this.logger.debug?.(`discarded a reply with unknown correlation_id ${String(id)} (late, duplicate or not ours)`);
      return;
    }
    let body: unknown;
    try {
      body = this.rules.codecs.decode(msg.content, msg.properties.contentType);
    } catch (err) {
      call.reject(err as Error);
      return;
    }
    if (msg.properties.headers?.[RPC_ERROR_HEADER]) {
      const e = (body ?? {}) as Partial<RpcErrorBody>;
      const status = Number.isInteger(e.status) ? e.status : undefined;
      call.reject(
        new RpcRemoteError(call.queue, String(e.name ?? 'Error'), String(e.message ?? ''), e.code, e.stack, {
          status,
          response: status === undefined ? undefined : e.response,
        }),
      );
      return;
    }
    call.resolve(body);
  }

  private onReturn(msg: Message): void {
    const call = this.settle(msg.properties.correlationId as string);
    const where = msg.fields.exchange
      ? `exchange "${msg.fields.exchange}" with routing key "${msg.fields.routingKey}"`
      : `queue "${msg.fields.routingKey}"`;
    call?.reject(
      new RpcNoRouteError(
        where,
        `${(msg.fields as { replyCode?: number }).replyCode ?? 312} ${(msg.fields as { replyText?: string }).replyText ?? 'NO_ROUTE'}`,
      ),
    );
  }

  /** Removes a pending call and returns it, or undefined when it was already settled. */
  private settle(correlationId: string): PendingCall | undefined {
    const call = this.pending.get(correlationId);
    if (!call) return undefined;
    this.pending.delete(correlationId);
    this.deadlines.remove(call);
    call.cleanup?.();
    return call;
  }

  private failPending(error: (call: PendingCall) => Error): void {
    for (const id of [...this.pending.keys()]) {
      const call = this.settle(id);
      call?.reject(error(call));
    }
  }
}

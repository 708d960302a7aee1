import { Logger } from '@nestjs/common';
import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { WarrenConnection } from '../connection/warren-connection.js';
import { exchangeNamedBy, isBrokerRefusal, queueNamedBy, undecodedHeaders } from '../connection/amqp-compat.js';
import { redactCredentials } from '../connection/redact.js';
import { extractTraceContext, openTelemetry, runInTraceContext } from '../tracing/trace-context.js';
import { inSpan, instruments, telemetryApi, tracer } from '../telemetry/telemetry.js';
import { endProcessSpan, endSpan, startBatchSpan, startProcessSpan } from '../telemetry/spans.js';
import { ACKED, MANUAL, REJECTED, type Settlement } from '../telemetry/outcomes.js';
import type { Span, Tracer } from '../telemetry/otel-types.js';
import { declareConsumerTopology } from '../topology/topology-declarer.js';
import {
  MessageDecodeError,
  NoHandlerError,
  PayloadValidationError,
  PoisonMessageError,
  TopologyError,
} from '../warren.errors.js';
import type { ConsumerTopology } from '../topology/topology.js';
import { type StandardSchemaV1, validateWithSchema } from '../validation/standard-schema.js';
import { FailureHandler, type Republish } from './failure-handler.js';
import type { FailurePolicy } from '../topology/failure-policy.js';
import { MessageCodecs } from '../codec/codecs.js';
import type { ServiceMember } from '../topology/service-queue.js';
import { ServiceDispatcher } from './service-dispatcher.js';
import { markSettled, onSettled, WarrenContext } from './warren-context.js';
import { BatchContext } from './batch-context.js';
import { Batcher, multipleAckFits } from './batcher.js';
import { BackoffLoop } from './backoff-loop.js';
import { isThenable } from './handler-invoker.js';
import { AckRuns } from './ack-runs.js';
import { InMemoryStreamOffsetStore, OffsetTracker } from './stream-offsets.js';
import type { StreamOffsetStore } from '../warren.options.js';
import { type StreamOffset, streamOffsetArgument } from '../topology/amqp-rules.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';

/**
 * What a consumer does with a decoded delivery; the delivery is acked once it resolves, or at once
 * when it returns a plain value (anything but a thenable) without throwing.
 */
export type DeliveryHandler = ((payload: unknown, context: WarrenContext) => unknown) & {
  /**
   * Told first when a delivery is poison (it never reaches the handler): an RPC server answers
   * the caller with an error reply at once instead of leaving it to time out.
   */
  onPoison?: (context: WarrenContext, err: PoisonMessageError) => Promise<void>;
};

type State = 'declared' | 'consuming' | 'paused' | 'cancelled';

/** A handler as a consumer holds it. */
export interface ConsumerHandler {
  /** `OrdersService.onPlaced`: how logs, errors and delivery events name it. */
  label: string;
  handle: DeliveryHandler;
  /** Checked on receipt; a payload that fails it is poison. */
  schema?: StandardSchemaV1;
}

/** Who handles a delivery, with the failure policy that applies to it. */
interface Route extends ConsumerHandler {
  failures: FailureHandler;
}

interface Delivery {
  context: WarrenContext;
  /** The channel it came on: its ack goes there, and dies with it. */
  channel: Channel;
  route: Route;
  /** A stream's delivery: its offset in the stream. */
  offset?: number;
  /** Set once decoded and validated. */
  payload: unknown;
  /** Its processing span, with an SDK's tracer registered. */
  span: Span | undefined;
  /** `performance.now()` at delivery, with an SDK's meter registered. */
  startedAt: number;
}

/** What `process` returns for a delivery its handler finished synchronously. */
const SYNC_DONE = Symbol('warren.handledSynchronously');

/** Routes of a service queue whose first unmatched message is logged; past it they go unlogged. */
const UNMATCHED_LOG_LIMIT = 1000;

/** A delivery a consumer has finished with: handled (acked) or failed (handed to its failure policy). */
export interface HandledMessage {
  /** `OrdersService.onPlaced`, or a runtime subscription's label. */
  label: string;
  queue: string;
  /** The decoded payload; undefined when decoding or validation failed. */
  payload: unknown;
  outcome: 'handled' | 'failed';
  error?: unknown;
  context: WarrenContext;
}

/**
 * One queue, one channel, one consumer. The channel's setup declares the consumer's topology and
 * (once started) consumes; amqp-connection-manager re-runs it after every reconnect, so a
 * server-named queue comes back under its new name with its bindings, and a cancelled consumer
 * stays cancelled because its setup is gone.
 *
 * When the broker cancels the consumer while the connection stays up (its queue was deleted, the
 * node holding it went away, a stream's leader moved), nothing re-runs the setup: the consumer
 * declares its topology again and consumes again itself, with backoff, until it succeeds.
 */
export class MessageConsumer {
  private readonly logger: Logger;
  private readonly wrapper: ChannelWrapper;
  private state: State = 'declared';
  private channel?: Channel;
  private consumingOn?: Channel;
  private consumerTag?: string;
  private inFlight = 0;
  private idle?: () => void;
  /** The queue's live name: for a server-named queue it changes with every connection. */
  queueName = '';

  private readonly failures: FailureHandler;
  /** The one handler of a plain consumer: every delivery goes to it, with no choice to make. */
  private readonly single?: Route;
  /** A service queue's handlers, chosen per delivery by its original route. */
  private readonly dispatcher?: ServiceDispatcher<Route>;
  private readonly unmatchedLogged = new Set<string>();
  /** Handler invocations running, and the deliveries waiting for a slot: only with a concurrency limit. */
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly resubscribing: BackoffLoop;
  private readonly offsets = new OffsetTracker();
  /** A stream consumer's offset up to which every delivery has settled. */
  private committed?: number;
  /** A batch handler's: collects deliveries into batches. */
  private readonly batcher?: Batcher<Delivery>;
  /** A batch consumer's unsettled delivery tags per channel: when one `multiple` ack may settle a batch. */
  private readonly unsettled = new WeakMap<Channel, Set<number>>();
  /**
   * A plain consumer's handled deliveries, acked together where one `multiple` ack settles exactly
   * them (not for a batch handler, which acks its batches itself, manual mode, or a stream).
   */
  private readonly acks?: AckRuns;

  constructor(
    private readonly connection: WarrenConnection,
    readonly topology: ConsumerTopology & { failure: FailurePolicy; members?: ServiceMember[] },
    /** `OrdersService.onPlaced`, or `service queue "billing"`: how logs and errors name this consumer. */
    readonly label: string,
    /** `Warren`, or `Warren:<name>` on a named connection: whose consumer this is. */
    loggerContext: string,
    /** The handler, or a service queue's handlers in the order of `topology.members`. */
    handlers: ConsumerHandler | readonly ConsumerHandler[],
    republish: Republish,
    /** Told of every delivery once it is settled (the testing kit listens here). */
    private readonly observe?: (event: HandledMessage) => void,
    /** Waits before each attempt to consume again after the broker cancelled the consumer. */
    resubscribeDelaysMs: readonly number[] = WARREN_DEFAULTS.resubscribeDelaysMs,
    /** Streams: where the consumer's offset is kept. */
    private readonly offsetStore: StreamOffsetStore = new InMemoryStreamOffsetStore(),
    /** The connection's codecs: a delivery is decoded by the one of its content type. */
    private readonly codecs: MessageCodecs = new MessageCodecs(),
  ) {
    this.logger = new Logger(loggerContext);
    this.resubscribing = new BackoffLoop(
      resubscribeDelaysMs,
      () => this.resubscribe(),
      (err, next) =>
        this.logger.warn(
          `${this.label}: cannot declare ${this.describeQueue()} again yet: ${redactCredentials(errorText(err))}; ` +
            `next attempt in ${next} ms`,
        ),
    );
    this.failures = new FailureHandler(topology.failure, label, republish, loggerContext);
    if (Array.isArray(handlers)) {
      const members = topology.members ?? [];
      this.dispatcher = new ServiceDispatcher(
        members.map((member, i) => ({
          ...member,
          route: {
            ...handlers[i],
            failures: new FailureHandler(member.failure, handlers[i].label, republish, loggerContext),
          },
        })),
      );
    } else {
      this.single = { ...(handlers as ConsumerHandler), failures: this.failures };
    }
    if (topology.batch) {
      this.batcher = new Batcher(topology.batch, (batch) =>
        this.schedule(() => (tracer ? this.tracedBatch(tracer, batch) : this.runBatch(batch))),
      );
    }
    if (!topology.batch && topology.failure.mode !== 'manual' && !topology.stream) this.acks = new AckRuns();
    this.wrapper = connection.createChannel('consume', { name: label, confirm: false });
  }

  /** Declares the topology on the live channel; errors surface here, at boot, not in a log. */
  async declare(): Promise<void> {
    await this.wrapper.waitForConnect();
    try {
      await this.wrapper.addSetup(this.setup);
    } catch (err) {
      // The connection dropped mid-boot: the setup stays registered and runs on the reconnect.
      if (!isBrokerRefusal(err)) {
        this.logger.warn(`${this.label}: connection lost while declaring; declared after the reconnect`);
        return;
      }
      // e.g. PRECONDITION_FAILED: the broker holds the queue with other settings; its text says
      // which one (the consumer's own queue, its dead-letter queue, a retry queue, an exchange).
      throw new TopologyError(
        `${this.label}: the broker refused the declaration of ${this.describeQueue(err as Error)}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  async start(): Promise<void> {
    if (this.state === 'cancelled') return;
    this.state = 'consuming';
    const channel = this.channel;
    if (!channel) return;
    try {
      await this.consumeOn(channel);
    } catch (err) {
      // The broker refused (it says why, with a reply code): a real error for the caller.
      if (isBrokerRefusal(err)) throw err;
      // The channel died under us (connection lost): its replacement's setup consumes, as
      // state is now 'consuming'. Nothing to report but the reconnect itself.
      this.logger.warn(`${this.label}: channel lost while starting the consumer; it starts after the reconnect`);
    }
  }

  /**
   * Stops deliveries but keeps the topology: the queue (and, for a named queue, its messages)
   * stays, a reconnect re-declares it without consuming, and `start()` resumes.
   */
  async pause(): Promise<void> {
    if (this.state !== 'consuming') return;
    this.state = 'paused';
    this.resubscribing.stop();
    const channel = this.consumingOn;
    const tag = this.consumerTag;
    this.consumingOn = undefined;
    // Deliveries already prefetched are still handled and acked as usual; a partial batch goes now.
    if (channel && tag) await channel.cancel(tag).catch(() => undefined);
    this.batcher?.flush();
  }

  get paused(): boolean {
    return this.state === 'paused';
  }

  get active(): boolean {
    return this.state === 'consuming' && this.consumingOn !== undefined;
  }

  /** Stops deliveries, waits for handlers in flight (up to `timeoutMs`), closes the channel. */
  async cancel(timeoutMs = 10_000): Promise<void> {
    if (this.state === 'cancelled') return;
    this.state = 'cancelled';
    this.resubscribing.stop();
    await this.wrapper.removeSetup(this.setup);
    const channel = this.consumingOn;
    const tag = this.consumerTag;
    this.consumingOn = undefined;
    if (channel && tag) await channel.cancel(tag).catch(() => undefined);
    // The partial batch is handled rather than held to its timeout: the shutdown waits for it below.
    this.batcher?.flush();
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    // Closing the channel returns whatever is still unacked to the queue: the acks due go first.
    this.acks?.flush();
    await this.connection.closeChannel(this.wrapper);
  }

  private readonly setup = async (channel: Channel): Promise<void> => {
    this.channel = channel;
    // Until the next setup, start() must not touch a dead channel: the setup will consume.
    channel.once('close', () => {
      if (this.channel === channel) this.channel = undefined;
      if (this.consumingOn === channel) this.consumingOn = undefined;
      // A batch still collecting from it: the broker has requeued those deliveries, and their acks could not reach it.
      for (const dead of this.batcher?.discard((d) => d.channel === channel) ?? []) this.settle(dead.offset);
    });
    this.consumingOn = undefined;
    this.queueName = await declareConsumerTopology(channel, this.topology);
    if (this.state === 'consuming') await this.consumeOn(channel);
  };

  private async consumeOn(channel: Channel): Promise<void> {
    // A reconnect's setup and start() may race to the same fresh channel: consume once.
    if (this.consumingOn === channel) return;
    this.consumingOn = channel;
    await channel.prefetch(this.topology.prefetch);
    const stream = this.topology.stream ? await this.streamStart(this.topology.stream.offset) : undefined;
    const { consumerTag } = await channel.consume(this.queueName, (msg) => this.onDelivery(channel, msg), {
      noAck: false,
      ...(stream !== undefined && { arguments: { 'x-stream-offset': streamOffsetArgument(stream) } }),
    });
    this.consumerTag = consumerTag;
  }

  private onDelivery(channel: Channel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      this.onBrokerCancel(channel);
      return;
    }
    this.inFlight++;
    this.acks?.received(channel, msg.fields.deliveryTag);
    const context = this.batcher ? this.batchContext(msg, channel) : new WarrenContext(msg, this.queueName, channel);
    // On the headers as they came, as the broker's headers exchange matches them.
    const headers = msg.properties.headers ?? {};
    const route = this.single ?? this.dispatcher!.route(context.exchange, context.routingKey, headers);
    if (route === undefined) return this.unmatched(context, channel);
    const delivery: Delivery = {
      context,
      channel,
      route,
      payload: undefined,
      span: undefined,
      startedAt: instruments ? performance.now() : 0,
    };
    if (context instanceof BatchContext) this.failing.set(context, delivery);
    if (this.topology.stream) {
      const offset = msg.properties.headers?.['x-stream-offset'];
      if (typeof offset === 'number') {
        delivery.offset = offset;
        this.offsets.delivered(offset);
      }
    }
    if (this.batcher) this.batcher.add(delivery);
    // Without a concurrency limit nothing waits: no closure to queue (run() handles its own outcome).
    else if (this.topology.concurrency === 0) void this.run(msg, delivery);
    else this.schedule(() => this.run(msg, delivery));
  }

  /** Runs one handler invocation (a delivery, or a batch) within the consumer's concurrency. */
  private schedule(invocation: () => Promise<unknown> | undefined): void {
    if (this.topology.concurrency === 0) {
      invocation()?.catch(() => undefined);
      return;
    }
    // Invocations past the limit wait here in the order the broker sent their deliveries, so
    // concurrency 1 handles the queue in order while the prefetch keeps the next ones at hand.
    const start = () => {
      this.running++;
      const running = invocation();
      if (running) running.then(this.release, this.release);
      else this.release();
    };
    if (this.running < this.topology.concurrency) start();
    else this.waiting.push(start);
  }

  /** A batch delivery's context, whose settling the consumer records (see `ackTogether`). */
  private batchContext(msg: ConsumeMessage, channel: Channel): BatchContext {
    let unsettled = this.unsettled.get(channel);
    if (!unsettled) this.unsettled.set(channel, (unsettled = new Set()));
    const tag = msg.fields.deliveryTag;
    unsettled.add(tag);
    const context = new BatchContext(msg, this.queueName, channel, (failed, error) => {
      const delivery = this.failing.get(failed);
      if (delivery) this.fail(delivery, error);
    });
    onSettled(context, () => unsettled.delete(tag));
    return context;
  }

  private readonly failing = new WeakMap<BatchContext, Delivery>();

  /**
   * One batch: each delivery decoded and validated on its own (a poison one is dead-lettered
   * alone), then the handler called once with the rest. When it resolves, what it did not settle
   * or fail itself is acked; when it throws, the batch is split in halves and each handed to the
   * handler again, down to single deliveries, which go through the failure policy on their own: a
   * poison message fails alone, and its neighbours are handled.
   */
  private async runBatch(batch: Delivery[], failed?: { error?: unknown }): Promise<void> {
    const prepared = await Promise.all(
      batch.map(async (delivery) => {
        try {
          delivery.payload = await this.prepare(delivery);
          return delivery;
        } catch (err) {
          this.fail(delivery, err);
          return undefined;
        }
      }),
    );
    await this.handleBatch(
      prepared.filter((d): d is Delivery => d !== undefined),
      failed,
    );
  }

  /**
   * A batch in one span of its own, linked to each message's sender context (an SDK is
   * registered): the handler's spans are its children. It ends once the handler is done with the
   * batch, halves included; its error is the handler's first. Each message's settlement is in the
   * metrics, as a single delivery's is.
   */
  private async tracedBatch(tracer: Tracer, batch: Delivery[]): Promise<void> {
    const span = startBatchSpan(
      tracer,
      telemetryApi!,
      this.queueName,
      batch[0].route.label,
      batch.map((d) => d.context.message),
    );
    const failed: { error?: unknown } = {};
    try {
      await inSpan(span, () => this.runBatch(batch, failed));
    } finally {
      endSpan(span, failed.error);
    }
  }

  private async handleBatch(batch: Delivery[], failed?: { error?: unknown }): Promise<void> {
    if (batch.length === 0) return;
    const contexts = batch.map((d) => d.context as BatchContext);
    try {
      // The batch handler takes the arrays where a single-message handler takes one payload and its context.
      await batch[0].route.handle(batch.map((d) => d.payload) as unknown, contexts as unknown as WarrenContext);
    } catch (err) {
      if (failed && !('error' in failed)) failed.error = err;
      const open = batch.filter((d) => !d.context.isSettled && !(d.context as BatchContext).isFailed);
      // Settled by the handler before it threw: reported failed, left as the handler left them.
      for (const d of batch) if (d.context.isSettled && !(d.context as BatchContext).isFailed) this.fail(d, err);
      if (open.length <= 1) {
        for (const d of open) this.fail(d, err);
        return;
      }
      const half = Math.ceil(open.length / 2);
      await this.handleBatch(open.slice(0, half), failed);
      await this.handleBatch(open.slice(half), failed);
      return;
    }
    const handled = batch.filter((d) => !(d.context as BatchContext).isFailed);
    if (this.topology.failure.mode !== 'manual') this.ackTogether(handled.filter((d) => !d.context.isSettled));
    for (const d of handled) this.done(d);
  }

  /**
   * Acks a handled batch with one `multiple` ack when that settles exactly its deliveries: all on
   * one channel, and no other delivery of that channel up to the last one's tag still unsettled
   * (one failing elsewhere, another batch in flight). Otherwise one ack each.
   */
  private ackTogether(batch: Delivery[]): void {
    if (batch.length === 0) return;
    const channel = batch[0].channel;
    const tags = batch.map((d) => d.context.deliveryTag);
    const unsettled = this.unsettled.get(channel) ?? new Set<number>();
    if (batch.some((d) => d.channel !== channel) || !multipleAckFits(unsettled, tags)) {
      for (const d of batch) d.context.ack();
      return;
    }
    const last = batch.reduce((a, b) => (b.context.deliveryTag > a.context.deliveryTag ? b : a)).context;
    try {
      channel.ack(last.message, true);
    } catch {
      // The channel died with the batch on it: the broker requeues the messages by itself.
    }
    for (const d of batch) markSettled(d.context);
  }

  private readonly release = (): void => {
    this.running--;
    this.waiting.shift()?.();
  };

  /** Handles one delivery; undefined when it was handled synchronously (see `process`). */
  private run(msg: ConsumeMessage, delivery: Delivery): Promise<unknown> | undefined {
    // The handler runs in the sender's trace context, so the spans it starts are children of the
    // sender's; with a tracer, in this delivery's span, itself the sender's child.
    const processing = tracer
      ? this.traced(tracer, msg, delivery)
      : openTelemetry
        ? runInTraceContext(openTelemetry, msg.properties.headers, () => this.process(msg, delivery))
        : this.process(msg, delivery);
    if (processing === SYNC_DONE) {
      this.done(delivery);
      return undefined;
    }
    processing.then(
      () => this.done(delivery),
      (err) => this.fail(delivery, err),
    );
    return processing;
  }

  private traced(tracer: Tracer, msg: ConsumeMessage, delivery: Delivery): Promise<unknown> | typeof SYNC_DONE {
    const { context, route } = delivery;
    const span = startProcessSpan(
      tracer,
      this.queueName,
      route.label,
      msg.fields,
      msg.properties,
      context.attempt,
      extractTraceContext(openTelemetry!, msg.properties.headers),
    );
    delivery.span = span;
    return inSpan(span, () => this.process(msg, delivery));
  }

  /** The delivery's span and metrics, once it is settled. */
  private finished(delivery: Delivery, label: string, settlement: Settlement, error: unknown, failed: boolean): void {
    if (delivery.span) endProcessSpan(delivery.span, settlement, error, failed);
    instruments?.processed(label, this.queueName, delivery.startedAt, settlement, error, failed);
  }

  /** The broker cancelled the consumer: its queue was deleted, or the node holding it went away. */
  private onBrokerCancel(channel: Channel): void {
    if (this.consumingOn === channel) this.consumingOn = undefined;
    const what = `${this.label}: the broker cancelled the consumer of queue "${this.queueName}"`;
    if (this.state !== 'consuming') {
      this.logger.warn(`${what}; it is ${this.state}, so it stays so`);
      return;
    }
    this.logger.warn(
      `${what} (deleted, or its node went away); declaring it again and consuming in ${this.resubscribing.firstDelayMs} ms`,
    );
    this.resubscribing.start();
  }

  /**
   * One attempt to come back after a broker cancel. The declarations go on a channel of their
   * own on the same connection (an exclusive queue belongs to the connection, not the channel), so
   * a refusal closes that one and not the consumer's: the next attempt waits its backoff rather
   * than the channel's reopening.
   */
  private async resubscribe(): Promise<'done' | 'again'> {
    const channel = this.channel;
    // Paused, cancelled, or a reconnect's setup has consumed (or will, on its fresh channel).
    if (this.state !== 'consuming' || this.consumingOn || !channel) return 'done';
    const name = await this.connection.withChannel('consume', (ch) => declareConsumerTopology(ch, this.topology));
    if (this.state !== 'consuming' || this.consumingOn || this.channel !== channel) return 'done';
    this.queueName = name;
    await this.consumeOn(channel);
    this.logger.log(`${this.label}: consuming queue "${name}" again`);
    return 'done';
  }

  /**
   * Where a stream consumer reads from: right after the offset it last committed (in this run, or
   * stored by an earlier one), else where its `offset` option says.
   */
  private async streamStart(configured: StreamOffset): Promise<StreamOffset> {
    this.offsets.reset();
    const stored = await this.offsetStore.load(this.label, this.queueName);
    const last = Math.max(stored ?? -1, this.committed ?? -1);
    return last >= 0 ? last + 1 : configured;
  }

  private commit(offset: number): void {
    const committed = this.offsets.settle(offset);
    if (committed === undefined || (this.committed !== undefined && committed <= this.committed)) return;
    this.committed = committed;
    Promise.resolve()
      .then(() => this.offsetStore.save(this.label, this.queueName, committed))
      .catch((err: unknown) =>
        this.logger.warn(
          `${this.label}: could not store offset ${committed} of stream "${this.queueName}": ${redactCredentials(errorText(err))}`,
        ),
      );
  }

  /** The consumer's queue, or what a refusal of its declarations names (its DLQ, a retry queue, an exchange). */
  private describeQueue(refusal?: Error): string {
    const exchange = refusal && exchangeNamedBy(refusal);
    if (exchange) return `exchange "${exchange}"`;
    const queue = (refusal && queueNamedBy(refusal)) ?? this.topology.queue.name;
    return queue ? `queue "${queue}"` : 'its server-named queue';
  }

  /**
   * Decodes (and validates) the delivery and hands it to its handler; rejects, never throws. A
   * payload without a schema to check is decoded in this tick, without an async step of its own,
   * and a handler that returns a plain value is done in this tick too: `SYNC_DONE`, no promise.
   */
  private process(msg: ConsumeMessage, delivery: Delivery): Promise<unknown> | typeof SYNC_DONE {
    if (delivery.route.schema) return this.prepare(delivery).then((payload) => this.handle(delivery, payload));
    try {
      const result = this.handle(delivery, this.decode(delivery));
      return isThenable(result) ? Promise.resolve(result) : SYNC_DONE;
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  private handle(delivery: Delivery, payload: unknown): unknown {
    delivery.payload = payload;
    return delivery.route.handle(payload, delivery.context);
  }

  /** The delivery's payload, decoded and validated; throws a PoisonMessageError when it is poison. */
  private async prepare(delivery: Delivery): Promise<unknown> {
    const payload = this.decode(delivery);
    const schema = delivery.route.schema;
    if (!schema) return payload;
    const result = await validateWithSchema(schema, payload);
    if ('issues' in result) throw new PayloadValidationError(result.issues);
    return result.value;
  }

  /** The delivery's payload as its codec decodes it; throws a PoisonMessageError when it cannot be. */
  private decode({ context }: Delivery): unknown {
    const msg = context.message;
    // Headers that amqplib could not decode (nested too deep, malformed) were left out: poison.
    const badHeaders = undecodedHeaders(msg.properties);
    if (badHeaders) throw new MessageDecodeError(`Headers cannot be decoded: ${badHeaders}`);
    return this.codecs.decode(msg.content, msg.properties.contentType);
  }

  private done(delivery: Delivery): void {
    const { context, route, payload, offset } = delivery;
    // In manual mode the handler settles the delivery itself, now or later.
    const manual = this.topology.failure.mode === 'manual';
    if (this.acks) {
      if (context.isSettled) this.acks.settled(delivery.channel, context.deliveryTag);
      else {
        markSettled(context);
        this.acks.handled(delivery.channel, context.message);
      }
    } else if (!manual) context.ack();
    this.settle(offset);
    if (delivery.span || instruments) this.finished(delivery, route.label, manual ? MANUAL : ACKED, undefined, false);
    this.observe?.({ label: route.label, queue: this.queueName, payload, outcome: 'handled', context });
  }

  private fail(delivery: Delivery, err: unknown): void {
    const { context, route, payload, offset } = delivery;
    const first =
      err instanceof PoisonMessageError && route.handle.onPoison
        ? route.handle.onPoison(context, err).catch((e: unknown) => {
            this.logger.warn(`${route.label}: could not answer a poison request: ${redactCredentials(String(e))}`);
          })
        : Promise.resolve();
    first
      .then(() => route.failures.onFailure(context, err))
      .catch((e: unknown) => {
        this.logger.error(`${route.label}: failure handling failed: ${redactCredentials(String(e))}`);
        context.nack({ requeue: false });
        return REJECTED;
      })
      .then((settlement) => {
        this.acks?.settled(delivery.channel, context.deliveryTag);
        this.settle(offset);
        if (delivery.span || instruments) this.finished(delivery, route.label, settlement, err, true);
        this.observe?.({ label: route.label, queue: this.queueName, payload, outcome: 'failed', error: err, context });
      });
  }

  /**
   * A service queue's message no handler of the queue is bound for: a binding an older deploy
   * left on the broker, or a redrive to the wrong queue. Never acked silently, never requeued to
   * come straight back: dead-lettered as `no-handler`, logged once per route.
   */
  private unmatched(context: WarrenContext, channel: Channel): void {
    const { exchange, routingKey } = context;
    const err = new NoHandlerError(
      `no handler of service queue "${this.queueName}" is bound for exchange "${exchange}" with routing key "${routingKey}"`,
    );
    const route = `${exchange}\u0000${routingKey}`;
    if (!this.unmatchedLogged.has(route) && this.unmatchedLogged.size < UNMATCHED_LOG_LIMIT) {
      this.unmatchedLogged.add(route);
      const outcome = this.topology.failure.deadLetter
        ? 'dead-lettered (reason no-handler)'
        : 'rejected without requeue (the queue has no dead-letter queue)';
      this.logger.error(
        `${this.label}: message from exchange "${exchange}" with routing key "${routingKey}" matches no handler ` +
          `of the queue; ${outcome}. Later messages of this route are handled the same way without a log line; ` +
          `remove the binding from the broker, or add a handler for it`,
      );
    }
    const startedAt = instruments ? performance.now() : 0;
    this.failures
      .unhandled(context, err)
      .catch((e: unknown) => {
        this.logger.error(`${this.label}: failure handling failed: ${redactCredentials(String(e))}`);
        context.nack({ requeue: false });
        return REJECTED;
      })
      .then((settlement) => {
        this.acks?.settled(channel, context.deliveryTag);
        this.settle();
        instruments?.processed(this.label, this.queueName, startedAt, settlement, err, true);
        this.observe?.({
          label: this.label,
          queue: this.queueName,
          payload: undefined,
          outcome: 'failed',
          error: err,
          context,
        });
      });
  }

  private settle(offset?: number): void {
    if (offset !== undefined) this.commit(offset);
    this.inFlight--;
    if (this.inFlight === 0 && this.idle) {
      // Whoever waits for the consumer to be idle may close its channel next: the acks due go first.
      this.acks?.flush();
      this.idle();
      this.idle = undefined;
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

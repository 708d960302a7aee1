import { type BeforeApplicationShutdown, Logger } from '@nestjs/common';
import type { WarrenConnection } from '../connection/warren-connection.js';
import type { Republish } from '../consumer/failure-handler.js';
import { type DeliveryHandler, MessageConsumer } from '../consumer/message-consumer.js';
import type { Publisher } from '../publisher/publisher.js';
import type { ConsumerSpec } from '../topology/topology-builder.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import { type StreamOffsetStore, warrenLoggerContext, type WarrenModuleOptions } from '../warren.options.js';
import { InMemoryStreamOffsetStore } from '../consumer/stream-offsets.js';
import type { DeliveryObservers } from './delivery-observers.js';
import type { TopologyRegistry } from './topology-registry.js';

/**
 * The life of a connection's consumers: registered at boot, then the whole topology declared,
 * and only then every consumer started, so no handler sees a message before every queue and
 * binding of the app exists. Consumers added later (runtime subscriptions) start at once. At
 * shutdown every consumer is cancelled and drained before the connection closes.
 */
export class ConsumerLifecycle implements BeforeApplicationShutdown {
  private readonly logger: Logger;
  private readonly loggerContext: string;
  private readonly consumers = new Set<MessageConsumer>();
  private readonly republish: Republish;
  private readonly shutdownTimeoutMs: number;
  private readonly resubscribeDelaysMs: readonly number[];
  private readonly offsetStore: StreamOffsetStore;
  private started = false;
  private stopping = false;

  constructor(
    private readonly connection: WarrenConnection,
    private readonly topology: TopologyRegistry,
    publisher: Publisher,
    private readonly observers: DeliveryObservers,
    options: WarrenModuleOptions,
  ) {
    this.loggerContext = warrenLoggerContext(options);
    this.logger = new Logger(this.loggerContext);
    this.republish = publisher.publishRaw.bind(publisher);
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? WARREN_DEFAULTS.shutdownTimeoutMs;
    this.resubscribeDelaysMs = resubscribeDelays(options.resubscribeDelaysMs);
    this.offsetStore = options.streams?.offsetStore ?? new InMemoryStreamOffsetStore();
  }

  /** True once the whole topology is declared and every consumer started, until shutdown begins. */
  get ready(): boolean {
    return this.started && !this.stopping;
  }

  /** Adds a consumer, not yet declared; throws TopologyError, naming `label`, when it contradicts the topology. */
  register(spec: ConsumerSpec, label: string, handle: DeliveryHandler): MessageConsumer {
    const topology = this.topology.consumer(spec, label);
    const consumer = new MessageConsumer(
      this.connection,
      topology,
      label,
      this.loggerContext,
      handle,
      this.republish,
      spec.schema,
      this.observers.notify,
      this.resubscribeDelaysMs,
      this.offsetStore,
    );
    this.consumers.add(consumer);
    return consumer;
  }

  /** Declares the whole topology, then starts every consumer registered so far. */
  async start(): Promise<void> {
    await this.topology.declare();
    const consumers = [...this.consumers];
    await Promise.all(consumers.map((c) => c.declare()));
    await Promise.all(consumers.map((c) => c.start()));
    this.started = true;
    this.logger.log(`${consumers.length} consumer(s) started`);
  }

  /** Registers a consumer and, once the boot has started the others, declares and starts it too. */
  async add(spec: ConsumerSpec, label: string, handle: DeliveryHandler): Promise<MessageConsumer> {
    const consumer = this.register(spec, label, handle);
    if (this.started) {
      try {
        await consumer.declare();
        await consumer.start();
      } catch (err) {
        await this.remove(consumer);
        throw err;
      }
    }
    return consumer;
  }

  /** Cancels a consumer for good and frees its queue for another. */
  async remove(consumer: MessageConsumer): Promise<void> {
    this.consumers.delete(consumer);
    if (consumer.topology.queue.name) this.topology.release(consumer.topology.queue.name);
    await consumer.cancel();
  }

  list(): MessageConsumer[] {
    return [...this.consumers];
  }

  /**
   * Stops taking deliveries and lets the handlers in flight finish (bounded); what is still
   * unacked then goes back to its queue when the channel closes.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.consumers].map((c) => c.cancel(this.shutdownTimeoutMs)));
    this.consumers.clear();
    await this.topology.close();
  }

  // Before any connection closes: Nest runs every beforeApplicationShutdown hook before the
  // onApplicationShutdown hooks, where WarrenConnection closes.
  async beforeApplicationShutdown(): Promise<void> {
    await this.stop();
  }
}

function resubscribeDelays(delays: unknown): readonly number[] {
  if (delays === undefined) return WARREN_DEFAULTS.resubscribeDelaysMs;
  const valid = (d: unknown) => typeof d === 'number' && Number.isFinite(d) && d >= 0;
  if (!Array.isArray(delays) || delays.length === 0 || !delays.every(valid)) {
    throw new WarrenConfigurationError(
      `WarrenModule options: resubscribeDelaysMs must be a non-empty array of milliseconds (numbers of 0 or more), got ${JSON.stringify(delays)}`,
    );
  }
  return delays as number[];
}

import { type BeforeApplicationShutdown, Logger } from '@nestjs/common';
import type { WarrenConnection } from '../connection/warren-connection.js';
import type { Republish } from '../consumer/failure-handler.js';
import { type DeliveryHandler, MessageConsumer } from '../consumer/message-consumer.js';
import type { Publisher } from '../publisher/publisher.js';
import type { ConsumerSpec } from '../topology/topology-builder.js';
import { redactCredentials } from '../connection/redact.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import { type StreamOffsetStore, warrenLoggerContext, type WarrenModuleOptions } from '../warren.options.js';
import { InMemoryStreamOffsetStore } from '../consumer/stream-offsets.js';
import type { DeliveryObservers } from './delivery-observers.js';
import type { HandlerAbout, RegisteredConsumer } from './topology-view.js';
import type { TopologyRegistry } from './topology-registry.js';

/** One handler of a service queue, as a registrar hands it over. */
export interface ServiceQueueMember {
  spec: ConsumerSpec;
  label: string;
  handle: DeliveryHandler;
  /** Its kind and contract, for the topology read-out. */
  about?: HandlerAbout;
}

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
  /** What kind of handler each consumer runs and the contract it was given: for the topology read-out. */
  private readonly about = new WeakMap<MessageConsumer, Pick<RegisteredConsumer, 'about' | 'schema'>>();
  private readonly republish: Republish;
  private readonly publisher: Publisher;
  private readonly shutdownTimeoutMs: number;
  private readonly waitForBroker: boolean;
  private readonly resubscribeDelaysMs: readonly number[];
  private readonly offsetStore: StreamOffsetStore;
  private started = false;
  private stopping = false;
  /** The boot's declaration and start of the consumers, once `start()` has begun it. */
  private starting?: Promise<void>;
  /** Lets publishes held for the boot's declaration go (to fail on the closing channel) at shutdown. */
  private releaseHeld?: (value: unknown) => void;
  /** The consumers the boot's start took in; later ones are started by `add()`. */
  private readonly launched = new WeakSet<MessageConsumer>();

  constructor(
    private readonly connection: WarrenConnection,
    private readonly topology: TopologyRegistry,
    publisher: Publisher,
    private readonly observers: DeliveryObservers,
    options: WarrenModuleOptions,
  ) {
    this.loggerContext = warrenLoggerContext(options);
    this.logger = new Logger(this.loggerContext);
    this.publisher = publisher;
    this.republish = publisher.publishRaw.bind(publisher);
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? WARREN_DEFAULTS.shutdownTimeoutMs;
    this.waitForBroker = options.waitForBroker ?? WARREN_DEFAULTS.waitForBroker;
    this.resubscribeDelaysMs = resubscribeDelays(options.resubscribeDelaysMs);
    this.offsetStore = options.streams?.offsetStore ?? new InMemoryStreamOffsetStore();
  }

  /**
   * True once the boot has registered every consumer discovery found: the topology is then
   * complete, whether or not the broker has answered yet (`waitForBroker: false`).
   */
  get booted(): boolean {
    return this.starting !== undefined;
  }

  /** True once the whole topology is declared and every consumer started, until shutdown begins. */
  get ready(): boolean {
    return this.started && !this.stopping;
  }

  /** Adds a consumer, not yet declared; throws TopologyError, naming `label`, when it contradicts the topology. */
  register(spec: ConsumerSpec, label: string, handle: DeliveryHandler, about?: HandlerAbout): MessageConsumer {
    const topology = this.topology.consumer(spec, label);
    const handler = { label, handle, schema: spec.schema };
    return this.track(this.consumerOf(topology, label, handler), {
      about: about ?? { kind: spec.exchange ? 'subscribe' : 'consume' },
      schema: spec.schema,
    });
  }

  /**
   * Adds a service queue's one consumer for several handlers naming the same queue, each given
   * the messages its own bindings match; throws TopologyError naming them when they disagree.
   */
  registerService(members: readonly ServiceQueueMember[]): MessageConsumer {
    const topology = this.topology.service(members.map((m) => ({ spec: m.spec, by: m.label })));
    const handlers = members.map((m) => ({ label: m.label, handle: m.handle, schema: m.spec.schema }));
    const label = `service queue "${topology.queue.name}"`;
    return this.track(this.consumerOf(topology, label, handlers), { about: { kind: 'subscribe' } });
  }

  private consumerOf(
    topology: ConstructorParameters<typeof MessageConsumer>[1],
    label: string,
    handlers: ConstructorParameters<typeof MessageConsumer>[4],
  ): MessageConsumer {
    return new MessageConsumer(
      this.connection,
      topology,
      label,
      this.loggerContext,
      handlers,
      this.republish,
      this.observers.notify,
      this.resubscribeDelaysMs,
      this.offsetStore,
    );
  }

  private track(consumer: MessageConsumer, about: Pick<RegisteredConsumer, 'about' | 'schema'>): MessageConsumer {
    this.consumers.add(consumer);
    this.about.set(consumer, about);
    return consumer;
  }

  /** Every consumer registered so far, as the topology read-out sees it. */
  registered(): RegisteredConsumer[] {
    return [...this.consumers].map((c) => ({
      label: c.label,
      topology: c.topology,
      about: { kind: 'consume' as const },
      ...this.about.get(c),
    }));
  }

  /**
   * Declares the whole topology, then starts every consumer registered so far. With
   * `waitForBroker: false` it returns at once and does this whenever the broker answers; a
   * declaration the broker refuses is then logged, and the app stays not ready.
   */
  async start(): Promise<void> {
    const declared = this.declareAll();
    this.starting = declared.then((consumers) => this.startAll(consumers));
    if (this.waitForBroker) return this.starting;
    // From here on the app serves requests while the broker may still be away: what they publish
    // waits until the queues it is meant for are declared (or the app stops).
    this.publisher.holdUntil(
      new Promise<unknown>((release) => {
        this.releaseHeld = release;
        declared.then(release, release);
      }),
    );
    this.starting.catch((err: unknown) => {
      if (!this.stopping) {
        this.logger.error(
          `the consumers were not started, the app stays not ready: ${redactCredentials(err instanceof Error ? err.message : String(err))}`,
        );
      }
    });
  }

  /** Declares the module's topology and every consumer's registered so far; returns those consumers. */
  private async declareAll(): Promise<MessageConsumer[]> {
    await this.topology.declare();
    const consumers = [...this.consumers];
    for (const c of consumers) this.launched.add(c);
    await Promise.all(consumers.map((c) => c.declare()));
    return consumers;
  }

  private async startAll(consumers: MessageConsumer[]): Promise<void> {
    await Promise.all(consumers.map((c) => c.start()));
    if (this.stopping) return;
    this.started = true;
    this.logger.log(`${consumers.length} consumer(s) started`);
  }

  /** Registers a consumer and, once the boot has started the others, declares and starts it too. */
  async add(
    spec: ConsumerSpec,
    label: string,
    handle: DeliveryHandler,
    about?: HandlerAbout,
  ): Promise<MessageConsumer> {
    const consumer = this.register(spec, label, handle, about);
    // A boot still waiting for the broker takes the consumer in, or has just missed it.
    if (!this.started) await this.starting?.catch(() => undefined);
    if (this.started && !this.launched.has(consumer)) {
      this.launched.add(consumer);
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
    this.releaseHeld?.(undefined);
    await Promise.all([...this.consumers].map((c) => c.cancel(this.shutdownTimeoutMs)));
    this.consumers.clear();
    await this.topology.close();
  }

  /** After a failed boot: stops whatever started and closes the connection, which nothing else will. */
  async abandon(): Promise<void> {
    await this.stop().catch(() => undefined);
    await this.connection.close();
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

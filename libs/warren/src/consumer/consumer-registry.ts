import { type BeforeApplicationShutdown, Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { ChannelWrapper } from 'amqp-connection-manager';
import { isBrokerRefusal } from '../connection/amqp-compat.js';
import { WarrenConnection } from '../connection/warren-connection.js';
import { Publisher } from '../publisher/publisher.js';
import { consumeSpec, type ConsumeOptions } from '../decorators/consume.decorator.js';
import { subscribeSpec, type SubscribeOptions } from '../decorators/subscribe.decorator.js';
import { declareShared } from '../topology/topology-declarer.js';
import { type ConsumerSpec, TopologyBuilder } from '../topology/topology-builder.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import {
  connectionNameOf,
  WARREN_MODULE_OPTIONS,
  warrenLoggerContext,
  type WarrenModuleOptions,
} from '../warren.options.js';
import { type Handler, invokeHandler } from './handler-invoker.js';
import { type DeliveryHandler, type HandledMessage, MessageConsumer } from './message-consumer.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';

/** A running consumer, as the app sees it. */
export interface ConsumerHandle {
  /** `OrdersService.onPlaced`, or the label given to a runtime subscription. */
  readonly label: string;
  /** The queue's live name (server-named queues change name after a reconnect). */
  readonly queue: string;
  readonly active: boolean;
  readonly paused: boolean;
  /** Stops deliveries until `resume()`; the queue stays declared, also across reconnects. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Stops this consumer for good: it does not come back after a reconnect. */
  cancel(): Promise<void>;
}

/**
 * Owns the app's topology and every consumer. Discovery feeds it the decorated methods at boot;
 * the app can add (and cancel) subscriptions at runtime through the same checks and the same
 * code path, e.g. for binding keys only known from the command line.
 */
@Injectable()
export class ConsumerRegistry implements BeforeApplicationShutdown {
  private readonly logger: Logger;
  private readonly builder = new TopologyBuilder();
  private readonly consumers = new Set<MessageConsumer>();
  private readonly observers = new Set<(event: HandledMessage) => void>();
  private readonly notify = (event: HandledMessage): void => {
    for (const observer of this.observers) observer(event);
  };
  private readonly prefetch: number;
  /** The declarations of the module options: not tied to a consumer, declared on their own channel. */
  private readonly moduleTopology: Parameters<typeof declareShared>[1];
  private topologyChannel?: ChannelWrapper;
  private started = false;

  constructor(
    private readonly connection: WarrenConnection,
    @Inject(WARREN_MODULE_OPTIONS) private readonly options: WarrenModuleOptions,
    // Optional for registries built outside DI (the @nestjs/microservices server).
    @Optional() private readonly publisher: Publisher = new Publisher(connection, options),
  ) {
    this.prefetch = options.prefetch ?? WARREN_DEFAULTS.prefetch;
    this.logger = new Logger(warrenLoggerContext(options));
    this.moduleTopology = this.addModuleTopology();
  }

  /** Adds a consumer to the topology; throws TopologyError, naming `label`, when it contradicts it. */
  register(spec: ConsumerSpec, label: string, handle: DeliveryHandler): MessageConsumer {
    const topology = this.builder.consumer(spec, label, this.prefetch, this.options.failure);
    const republish = this.publisher.publishRaw.bind(this.publisher);
    const consumer = new MessageConsumer(
      this.connection,
      topology,
      label,
      warrenLoggerContext(this.options),
      handle,
      republish,
      spec.schema,
      this.notify,
    );
    this.consumers.add(consumer);
    return consumer;
  }

  /**
   * Declares the whole topology, then starts every consumer: no handler sees a message before
   * every queue and binding of the app exists.
   */
  async start(): Promise<void> {
    const setup = (channel: Parameters<typeof declareShared>[0]) => declareShared(channel, this.moduleTopology);
    this.topologyChannel = this.connection.createChannel('consume', { name: 'topology', confirm: false });
    await this.topologyChannel.waitForConnect();
    await this.topologyChannel.addSetup(setup).catch((err: unknown) => {
      // A connection lost mid-boot is no boot error: the setup stays registered and runs on the reconnect.
      if (isBrokerRefusal(err)) throw err;
      this.logger.warn('connection lost while declaring the module topology; declared after the reconnect');
    });
    const consumers = [...this.consumers];
    await Promise.all(consumers.map((c) => c.declare()));
    await Promise.all(consumers.map((c) => c.start()));
    this.started = true;
    this.logger.log(`${consumers.length} consumer(s) started`);
  }

  /** Subscribes `handler` at runtime, exactly as `@Subscribe(exchange, bindingKeys, options)` would. */
  async subscribe(
    exchange: string,
    bindingKeys: string | string[] | undefined,
    handler: Handler,
    options: SubscribeOptions & { label?: string } = {},
  ): Promise<ConsumerHandle> {
    const label = options.label ?? `subscribe(${exchange})`;
    this.checkConnection(label, options.connection);
    return this.add(subscribeSpec(label, exchange, bindingKeys, options, 'subscribe'), label, handler);
  }

  /** Consumes `queue` at runtime, exactly as `@Consume(queue, options)` would. */
  async consume(
    queue: string,
    handler: Handler,
    options: ConsumeOptions & { label?: string } = {},
  ): Promise<ConsumerHandle> {
    const label = options.label ?? `consume(${queue})`;
    this.checkConnection(label, options.connection);
    return this.add(consumeSpec(label, queue, options, 'consume'), label, handler);
  }

  /** Calls `listener` after every delivery any consumer settles; returns the unsubscriber. */
  observe(listener: (event: HandledMessage) => void): () => void {
    this.observers.add(listener);
    return () => this.observers.delete(listener);
  }

  /**
   * The queues and exchanges this app declared, with the live names of its temporary queues:
   * what a test purges or deletes between cases.
   */
  declared(): { exchanges: string[]; queues: string[] } {
    const shared = this.builder.shared();
    const queues = new Set(shared.queues.map((q) => q.name));
    for (const c of this.consumers) if (c.queueName) queues.add(c.queueName);
    return { exchanges: shared.exchanges.map((e) => e.name), queues: [...queues] };
  }

  list(): ConsumerHandle[] {
    return [...this.consumers].map((c) => this.handleOf(c));
  }

  async beforeApplicationShutdown(): Promise<void> {
    // Stop taking deliveries, let handlers in flight finish (bounded); what is still unacked then
    // goes back to its queue when the channel closes.
    const timeout = this.options.shutdownTimeoutMs ?? WARREN_DEFAULTS.shutdownTimeoutMs;
    await Promise.all([...this.consumers].map((c) => c.cancel(timeout)));
    this.consumers.clear();
    if (this.topologyChannel) await this.connection.closeChannel(this.topologyChannel);
  }

  /** A runtime subscription goes on this registry's connection: one naming another is a mistake, not a choice. */
  private checkConnection(label: string, wanted: string | undefined): void {
    const own = connectionNameOf(this.options);
    if (wanted === undefined || wanted === own) return;
    throw new WarrenConfigurationError(
      `${label}: options.connection is "${wanted}", but this is the ConsumerRegistry of the connection "${own}": ` +
        `use that connection's registry (@InjectConsumerRegistry('${wanted}'))`,
    );
  }

  private async add(spec: ConsumerSpec, label: string, handler: Handler): Promise<ConsumerHandle> {
    const consumer = this.register(spec, label, (payload, context) => invokeHandler(handler, payload, context));
    if (this.started) {
      try {
        await consumer.declare();
        await consumer.start();
      } catch (err) {
        await this.remove(consumer);
        throw err;
      }
    }
    return this.handleOf(consumer);
  }

  private async remove(consumer: MessageConsumer): Promise<void> {
    this.consumers.delete(consumer);
    if (consumer.topology.queue.name) this.builder.release(consumer.topology.queue.name);
    await consumer.cancel();
  }

  private handleOf(consumer: MessageConsumer): ConsumerHandle {
    return {
      label: consumer.label,
      get queue() {
        return consumer.queueName;
      },
      get active() {
        return consumer.active;
      },
      get paused() {
        return consumer.paused;
      },
      pause: () => consumer.pause(),
      resume: () => consumer.start(),
      cancel: () => this.remove(consumer),
    };
  }

  /** Checks the module options' declarations with the rest and keeps them, normalised, for `start()`. */
  private addModuleTopology(): Parameters<typeof declareShared>[1] {
    const by = 'WarrenModule options (topology)';
    const topology = this.options.topology ?? {};
    return {
      exchanges: (topology.exchanges ?? []).map((e) => this.builder.exchange(e, by)),
      queues: (topology.queues ?? []).map((q) => this.builder.queue(q, by)),
      bindings: (topology.bindings ?? []).map((b) => this.builder.binding(b, by)),
    };
  }
}

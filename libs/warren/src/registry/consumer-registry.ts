import { callHandler, type Handler } from '../consumer/handler-invoker.js';
import type { HandledMessage, MessageConsumer } from '../consumer/message-consumer.js';
import { consumeSpec, type ConsumeOptions } from '../decorators/consume.decorator.js';
import { subscribeSpec, type SubscribeOptions } from '../decorators/subscribe.decorator.js';
import type { ConsumerSpec } from '../topology/topology-builder.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import { connectionNameOf, type WarrenModuleOptions } from '../warren.options.js';
import type { ConsumerLifecycle } from './consumer-lifecycle.js';
import type { DeliveryObservers } from './delivery-observers.js';
import type { TopologyRegistry } from './topology-registry.js';
import { type ConnectionTopology, connectionTopology, TOPOLOGY_READER } from './topology-view.js';

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
 * A connection's consumers, for the app: runtime subscriptions (e.g. for binding keys only known
 * from the command line) go through the same checks and the same code path as the decorated
 * handlers found at boot, and every consumer can be listed, paused and cancelled.
 */
export class ConsumerRegistry {
  private readonly connection: string;

  constructor(
    private readonly consumers: ConsumerLifecycle,
    private readonly topologyRegistry: TopologyRegistry,
    private readonly observers: DeliveryObservers,
    options: WarrenModuleOptions,
  ) {
    this.connection = connectionNameOf(options);
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
    this.checkNoBatch(label, options);
    const who = `ConsumerRegistry.subscribe() on ${label}`;
    return this.add(subscribeSpec(who, exchange, bindingKeys, options), label, handler, 'subscribe');
  }

  /** Consumes `queue` at runtime, exactly as `@Consume(queue, options)` would. */
  async consume(
    queue: string,
    handler: Handler,
    options: ConsumeOptions & { label?: string } = {},
  ): Promise<ConsumerHandle> {
    const label = options.label ?? `consume(${queue})`;
    this.checkConnection(label, options.connection);
    this.checkNoBatch(label, options);
    return this.add(consumeSpec(`ConsumerRegistry.consume() on ${label}`, queue, options), label, handler, 'consume');
  }

  /** Calls `listener` after every delivery any consumer settles; returns the unsubscriber. */
  observe(listener: (event: HandledMessage) => void): () => void {
    return this.observers.add(listener);
  }

  /**
   * The queues and exchanges this app declared, with the live names of its temporary queues:
   * what a test purges or deletes between cases.
   */
  declared(): { exchanges: string[]; queues: string[] } {
    const shared = this.topologyRegistry.shared();
    const queues = new Set(shared.queues.map((q) => q.name));
    for (const c of this.consumers.list()) if (c.queueName) queues.add(c.queueName);
    return { exchanges: shared.exchanges.map((e) => e.name), queues: [...queues] };
  }

  /**
   * This connection's whole declared topology, read-only: exchanges, named queues and bindings
   * with the handlers (or module options) that declared each, and every handler with its kind,
   * queue, bindings and contract. What `describeTopology(app)`, AsyncAPI and the CLI read.
   */
  topology(): ConnectionTopology {
    return connectionTopology(this.connection, this.topologyRegistry.declarations(), this.consumers.registered());
  }

  /** Cross-build: the CLI may load the other build of the library than the app's. */
  [TOPOLOGY_READER](): { booted: boolean; topology: ConnectionTopology } {
    return { booted: this.consumers.booted, topology: this.topology() };
  }

  list(): ConsumerHandle[] {
    return this.consumers.list().map((c) => this.handleOf(c));
  }

  /** A runtime handler is called with one message; the `(payloads, contexts)` of a batch are the decorators' (not yet here). */
  private checkNoBatch(label: string, options: { batch?: unknown }): void {
    if (options.batch === undefined) return;
    throw new WarrenConfigurationError(
      `${label}: a runtime subscription handles one message at a time; batch handlers are declared with ` +
        `@Subscribe()/@Consume() (their batch option)`,
    );
  }

  /** A runtime subscription goes on this registry's connection: one naming another is a mistake, not a choice. */
  private checkConnection(label: string, wanted: string | undefined): void {
    const own = this.connection;
    if (wanted === undefined || wanted === own) return;
    throw new WarrenConfigurationError(
      `${label}: options.connection is "${wanted}", but this is the ConsumerRegistry of the connection "${own}": ` +
        `use that connection's registry (@InjectConsumerRegistry('${wanted}'))`,
    );
  }

  private async add(
    spec: ConsumerSpec,
    label: string,
    handler: Handler,
    kind: 'subscribe' | 'consume',
  ): Promise<ConsumerHandle> {
    const consumer = await this.consumers.add(
      spec,
      label,
      (payload, context) => callHandler(handler, payload, context),
      { kind },
    );
    return this.handleOf(consumer);
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
      cancel: () => this.consumers.remove(consumer),
    };
  }
}

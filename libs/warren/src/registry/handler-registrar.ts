import { callHandler, type Handler } from '../consumer/handler-invoker.js';
import type { DeliveryHandler } from '../consumer/message-consumer.js';
import type { HandlerMetadata } from '../decorators/handler-metadata.js';
import type { RpcHandlerExtra } from '../decorators/rpc-handler.decorator.js';
import type { RpcResponder } from '../rpc/rpc-responder.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import { connectionNameOf, DEFAULT_CONNECTION, type WarrenModuleOptions } from '../warren.options.js';
import type { ConsumerLifecycle, ServiceQueueMember } from './consumer-lifecycle.js';
import { groupServiceQueues } from './service-queues.js';

/** A decorated method, as discovery found it. */
export interface DiscoveredMethod {
  /** `OrdersService.onPlaced`: how logs and errors name its consumers. */
  label: string;
  /** Every handler decorator on the method, whichever connection each names. */
  metadata: readonly HandlerMetadata[];
  /** The method as a `(payload, context)` handler; called only by a connection that takes one of its handlers. */
  handler: () => Handler;
}

/** Where a handler goes: what the connection checks need of a decorator, configured or not. */
type Placement = Pick<HandlerMetadata, 'kind' | 'connection'>;

/** A method's handlers as the connection checks see them. */
export interface HandlerPlacement {
  label: string;
  metadata: readonly Placement[];
}

const DECORATORS: Record<HandlerMetadata['kind'], string> = {
  subscribe: '@Subscribe()',
  consume: '@Consume()',
  rpc: '@RpcHandler()',
};

/**
 * Turns the decorated methods discovery found into one connection's consumers: those naming this
 * connection (the default one: those naming none), each wrapped for its kind (an RPC handler
 * replies, the others are invoked).
 */
export class HandlerRegistrar {
  /** `default`, or the module's name. */
  readonly connection: string;
  private readonly pending: (ServiceQueueMember & { shareable: boolean })[] = [];

  constructor(
    private readonly consumers: ConsumerLifecycle,
    private readonly responder: RpcResponder,
    options: WarrenModuleOptions,
  ) {
    this.connection = connectionNameOf(options);
  }

  /**
   * Refuses a handler naming a connection the app does not register, and a connection name
   * registered twice. `connections` holds the connection of every registrar in the app.
   */
  checkConnections(methods: readonly HandlerPlacement[], connections: readonly string[]): void {
    const registered = new Set<string>();
    for (const name of connections) {
      if (registered.has(name)) {
        throw new WarrenConfigurationError(
          `WarrenModule registers the connection "${name}" twice (two forRoot()/forRootAsync() with ` +
            `this name and different options): give each connection its own name`,
        );
      }
      registered.add(name);
    }
    const known = [...registered].map((n) => `"${n}"`).join(', ');
    for (const { label, metadata } of methods) {
      for (const m of metadata) {
        if (registered.has(connectionOf(m))) continue;
        throw new WarrenConfigurationError(
          m.connection === undefined
            ? `${label}: ${DECORATORS[m.kind]} names no connection, so it needs the default one, which is not ` +
                `registered (WarrenModule.forRoot() without a name); the app registers ${known}: name one with { connection }`
            : `${label}: ${DECORATORS[m.kind]} names the connection "${m.connection}", which is not registered ` +
                `(WarrenModule.forRoot({ name: '${m.connection}', ... })); the app registers ${known}`,
        );
      }
    }
  }

  /** Whether any of `metadata` is a handler on this connection. */
  takesAny(metadata: readonly Placement[]): boolean {
    return metadata.some((m) => connectionOf(m) === this.connection);
  }

  /**
   * Takes the method's handlers on this connection (none if it has none here); `finish()`
   * registers them, once every method is known, so that the subscriptions of several methods
   * naming one queue become one service queue.
   */
  register(method: DiscoveredMethod): void {
    const own = method.metadata.filter((m) => connectionOf(m) === this.connection);
    if (own.length === 0) return;
    const handler = method.handler();
    for (const metadata of own) {
      this.pending.push({
        spec: metadata.consumer,
        label: method.label,
        handle: this.deliveryHandler(metadata, handler, method.label),
        about: { kind: metadata.kind, contract: metadata.contract },
        shareable: metadata.kind === 'subscribe',
      });
    }
  }

  /** Registers every handler taken so far with the connection's consumers, service queues grouped. */
  finish(): void {
    const pending = this.pending.splice(0);
    for (const group of groupServiceQueues(pending)) {
      if (group.length === 1) this.consumers.register(group[0].spec, group[0].label, group[0].handle, group[0].about);
      else this.consumers.registerService(group);
    }
  }

  private deliveryHandler(metadata: HandlerMetadata, handler: Handler, label: string): DeliveryHandler {
    if (metadata.kind === 'rpc') return this.responder.responderFor(handler, label, metadata.extra as RpcHandlerExtra);
    return (payload, context) => callHandler(handler, payload, context);
  }
}

function connectionOf(metadata: Placement): string {
  return metadata.connection ?? DEFAULT_CONNECTION;
}

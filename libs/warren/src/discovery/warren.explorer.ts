import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { ConsumerRegistry } from '../consumer/consumer-registry.js';
import { invokeHandler } from '../consumer/handler-invoker.js';
import { getHandlerMetadata, type HandlerMetadata } from '../decorators/handler-metadata.js';
import type { RpcHandlerExtra } from '../decorators/rpc-handler.decorator.js';
import type { Handler } from '../consumer/handler-invoker.js';
import type { DeliveryHandler } from '../consumer/message-consumer.js';
import { RpcResponder } from '../rpc/rpc-responder.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import {
  connectionNameOf,
  DEFAULT_CONNECTION,
  WARREN_MODULE_OPTIONS,
  type WarrenModuleOptions,
} from '../warren.options.js';
import { type HandlerCollection, HandlerFactory } from './handler-factory.js';

const DECORATORS: Record<HandlerMetadata['kind'], string> = {
  subscribe: '@Subscribe()',
  consume: '@Consume()',
  rpc: '@RpcHandler()',
};

/**
 * Finds every decorated handler method in the app at boot and hands those of its connection to
 * the registry, which checks the whole topology, declares it, and only then starts the consumers.
 * Each connection (`WarrenModule.forRoot({ name })`) has its own explorer.
 */
@Injectable()
export class WarrenExplorer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger: Logger;
  /** The connection whose handlers this explorer wires: `default`, or the module's name. */
  readonly connection: string;
  private started = false;
  private stopping = false;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly registry: ConsumerRegistry,
    private readonly responder: RpcResponder,
    private readonly handlers: HandlerFactory,
    @Inject(WARREN_MODULE_OPTIONS) options: WarrenModuleOptions,
  ) {
    this.connection = connectionNameOf(options);
    this.logger = new Logger(this.connection === DEFAULT_CONNECTION ? 'Warren' : `Warren:${this.connection}`);
  }

  /** True once the whole topology is declared and every consumer started, until shutdown begins. */
  get ready(): boolean {
    return this.started && !this.stopping;
  }

  async onApplicationBootstrap(): Promise<void> {
    const providers = this.discovery.getProviders();
    const controllers = this.discovery.getControllers();
    // Every connection's explorer checks every handler, so whichever boots first refuses a
    // handler meant for no registered connection before anything is declared on any broker.
    const registered = this.registeredConnections(providers);
    // One object can sit behind several tokens (useExisting, the same useValue in two modules):
    // its handlers are registered once.
    const seen = new Set<object>();
    for (const wrapper of providers) this.explore(wrapper, 'providers', seen, registered);
    for (const wrapper of controllers) this.explore(wrapper, 'controllers', seen, registered);
    await this.registry.start();
    this.started = true;
  }

  beforeApplicationShutdown(): void {
    this.stopping = true;
  }

  /** The names of the connections the app's WarrenModules register; a name registered twice is refused. */
  private registeredConnections(providers: InstanceWrapper[]): Set<string> {
    const explorers = new Set<WarrenExplorer>();
    for (const wrapper of providers) if (wrapper.instance instanceof WarrenExplorer) explorers.add(wrapper.instance);
    const names = new Set<string>();
    for (const explorer of explorers) {
      if (names.has(explorer.connection)) {
        throw new WarrenConfigurationError(
          `WarrenModule registers the connection "${explorer.connection}" twice (two forRoot()/forRootAsync() with ` +
            `this name and different options): give each connection its own name`,
        );
      }
      names.add(explorer.connection);
    }
    return names;
  }

  private explore(
    wrapper: InstanceWrapper,
    collection: HandlerCollection,
    seen: Set<object>,
    registered: Set<string>,
  ): void {
    if (wrapper.isAlias) return;
    // A request-scoped provider's static instance is an unconstructed object of its class: enough
    // to read the class's decorators. (A request-scoped useFactory provider has none: no class to
    // read until a request runs the factory.)
    const instance = wrapper.instance as Record<string, unknown> | undefined;
    if (!instance || typeof instance !== 'object' || seen.has(instance)) return;
    const prototype = Object.getPrototypeOf(instance);
    if (!prototype || prototype === Object.prototype) return;
    const className = instance.constructor.name;
    const methods = this.scanner
      .getAllMethodNames(prototype)
      .map((method) => [method, this.ownHandlers(prototype, `${className}.${method}`, method, registered)] as const)
      .filter(([, handlers]) => handlers.length > 0);
    if (methods.length === 0) return;
    seen.add(instance);
    if (wrapper.isTransient) {
      this.logger.warn(
        `${className}: transient providers cannot hold handlers (each injection has its own instance); ` +
          `make it a default- or request-scoped provider. Its handlers are skipped.`,
      );
      return;
    }
    const requestScoped = !wrapper.isDependencyTreeStatic();
    for (const [method, handlers] of methods) {
      const label = `${className}.${method}`;
      const fn = requestScoped
        ? this.handlers.forRequestScope(wrapper, method, collection)
        : this.handlers.forInstance(instance, method);
      for (const metadata of handlers) {
        this.registry.register(metadata.consumer, label, this.deliveryHandler(metadata, fn, label));
      }
    }
  }

  /** The method's handlers on this explorer's connection, once every one of them is checked to name a registered one. */
  private ownHandlers(prototype: object, label: string, method: string, registered: Set<string>): HandlerMetadata[] {
    const all = getHandlerMetadata(prototype, method) ?? [];
    for (const metadata of all) {
      const wanted = metadata.connection ?? DEFAULT_CONNECTION;
      if (registered.has(wanted)) continue;
      const known = [...registered].map((n) => `"${n}"`).join(', ');
      throw new WarrenConfigurationError(
        metadata.connection === undefined
          ? `${label}: ${DECORATORS[metadata.kind]} names no connection, so it needs the default one, which is not ` +
              `registered (WarrenModule.forRoot() without a name); the app registers ${known}: name one with { connection }`
          : `${label}: ${DECORATORS[metadata.kind]} names the connection "${wanted}", which is not registered ` +
              `(WarrenModule.forRoot({ name: '${wanted}', ... })); the app registers ${known}`,
      );
    }
    return all.filter((metadata) => (metadata.connection ?? DEFAULT_CONNECTION) === this.connection);
  }

  private deliveryHandler(metadata: HandlerMetadata, fn: Handler, label: string): DeliveryHandler {
    if (metadata.kind === 'rpc') return this.responder.responderFor(fn, label, metadata.extra as RpcHandlerExtra);
    return (payload, context) => invokeHandler(fn, payload, context);
  }
}

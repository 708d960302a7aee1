import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import type { Handler } from '../consumer/handler-invoker.js';
import { resolveConfigured } from '../decorators/configured-handler.js';
import {
  type DecoratedHandler,
  getHandlerMetadata,
  type HandlerMetadata,
  isConfigured,
} from '../decorators/handler-metadata.js';
import { getHandlerWrappers } from '../decorators/handler-wrapper.js';
import { ConsumerLifecycle } from '../registry/consumer-lifecycle.js';
import { type DiscoveredMethod, HandlerRegistrar } from '../registry/handler-registrar.js';
import {
  DEFAULT_CONNECTION,
  WARREN_MODULE_OPTIONS,
  warrenLoggerContext,
  type WarrenModuleOptions,
} from '../warren.options.js';
import { type HandlerCollection, HandlerFactory } from './handler-factory.js';

/** A decorated method as found, before configured handlers are completed. */
interface FoundMethod extends Omit<DiscoveredMethod, 'metadata' | 'handler'> {
  metadata: readonly DecoratedHandler[];
  /** The method as a handler, given its completed handler decorators (what wrappers see). */
  handler: (metadata: readonly HandlerMetadata[]) => Handler;
}

/** A provider or controller with decorated methods. */
interface DiscoveredClass {
  className: string;
  /** A transient provider has no one instance to hold its handlers. */
  transient: boolean;
  methods: FoundMethod[];
}

/**
 * Finds every decorated handler method in the app at boot and hands them on to its connection's
 * registrar, then starts the connection's consumers. Each connection
 * (`WarrenModule.forRoot({ name })`) has its own explorer.
 */
@Injectable()
export class WarrenExplorer implements OnApplicationBootstrap {
  private readonly logger: Logger;
  private readonly options: WarrenModuleOptions;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly registrar: HandlerRegistrar,
    private readonly consumers: ConsumerLifecycle,
    private readonly handlers: HandlerFactory,
    @Inject(WARREN_MODULE_OPTIONS) options: WarrenModuleOptions,
  ) {
    this.logger = new Logger(warrenLoggerContext(options));
    this.options = options;
  }

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.boot();
    } catch (err) {
      // Nest runs no shutdown hook after a failed boot (with abortOnError: false the process
      // lives on): no connection of the app may keep it alive, this one's nor those of the other
      // Warren connections (named ones), booted already or never to boot.
      const everyConnection = new Set<ConsumerLifecycle>([this.consumers]);
      for (const wrapper of this.discovery.getProviders()) {
        if (wrapper.instance instanceof ConsumerLifecycle) everyConnection.add(wrapper.instance);
      }
      await Promise.all([...everyConnection].map((lifecycle) => lifecycle.abandon().catch(() => undefined)));
      throw err;
    }
  }

  private async boot(): Promise<void> {
    const providers = this.discovery.getProviders();
    // One object can sit behind several tokens (useExisting, the same useValue in two modules):
    // its handlers are registered once.
    const seen = new Set<object>();
    const found = [
      ...providers.map((wrapper) => this.explore(wrapper, 'providers', seen)),
      ...this.discovery.getControllers().map((wrapper) => this.explore(wrapper, 'controllers', seen)),
    ].filter((c) => c !== undefined);
    // Every connection's registrar checks every handler, so whichever boots first refuses a
    // handler meant for no registered connection before anything is declared on any broker.
    this.registrar.checkConnections(
      found.flatMap((c) => c.methods),
      connectionsOf(providers),
    );
    const resolved = this.completeConfigured(found);
    for (const { className, transient, methods } of resolved) {
      if (!transient) {
        for (const method of methods) this.registrar.register(method);
      } else if (methods.some((m) => this.registrar.takesAny(m.metadata))) {
        this.logger.warn(
          `${className}: transient providers cannot hold handlers (each injection has its own instance); ` +
            `make it a default- or request-scoped provider. Its handlers are skipped.`,
        );
      }
    }
    // Only now, with every method known, can subscriptions sharing a queue become one service queue.
    this.registrar.finish();
    await this.consumers.start();
  }

  /**
   * Completes the handlers configured for this connection (`@Consume({ config: 'jobs' })`) from its
   * module options' `handlers`, before anything is registered, so a missing entry fails the boot
   * before anything is declared. Configured handlers of other connections are theirs to complete.
   */
  private completeConfigured(
    found: DiscoveredClass[],
  ): (Omit<DiscoveredClass, 'methods'> & { methods: DiscoveredMethod[] })[] {
    const own = this.registrar.connection;
    const handlers = this.options.handlers;
    const named = new Set<string>();
    const resolved = found.map((c) => ({
      ...c,
      methods: c.methods.map((m): DiscoveredMethod => {
        const metadata = m.metadata.flatMap((d): HandlerMetadata[] => {
          if (!isConfigured(d)) return [d];
          if ((d.connection ?? DEFAULT_CONNECTION) !== own) return [];
          named.add(d.config);
          return [resolveConfigured(d, m.label, handlers, own)];
        });
        return { label: m.label, metadata, handler: () => m.handler(metadata) };
      }),
    }));
    for (const key of Object.keys(handlers ?? {})) {
      if (named.has(key)) continue;
      this.logger.warn(
        `handlers["${key}"] in the module options of the connection "${own}" is named by no handler ` +
          `(@Subscribe/@Consume/@RpcHandler({ config: '${key}' })): a typo, or a handler on another connection?`,
      );
    }
    return resolved;
  }

  private explore(
    wrapper: InstanceWrapper,
    collection: HandlerCollection,
    seen: Set<object>,
  ): DiscoveredClass | undefined {
    if (wrapper.isAlias) return undefined;
    // A request-scoped provider's static instance is an unconstructed object of its class: enough
    // to read the class's decorators. (A request-scoped useFactory provider has none: no class to
    // read until a request runs the factory.)
    const instance = wrapper.instance as Record<string, unknown> | undefined;
    if (!instance || typeof instance !== 'object' || seen.has(instance)) return undefined;
    const prototype = Object.getPrototypeOf(instance);
    if (!prototype || prototype === Object.prototype) return undefined;
    const className = instance.constructor.name;
    const methods: FoundMethod[] = [];
    for (const method of this.scanner.getAllMethodNames(prototype)) {
      const metadata = getHandlerMetadata(prototype, method) ?? [];
      if (metadata.length === 0) continue;
      const label = `${className}.${method}`;
      const wrappers = getHandlerWrappers(prototype, method);
      const handler = (completed: readonly HandlerMetadata[]): Handler =>
        this.handlers.wrapped(
          !wrapper.isDependencyTreeStatic()
            ? this.handlers.forRequestScope(wrapper, method, collection)
            : this.handlers.forInstance(instance, method),
          wrappers,
          label,
          completed,
        );
      methods.push({ label, metadata, handler });
    }
    if (methods.length === 0) return undefined;
    seen.add(instance);
    return { className, transient: wrapper.isTransient, methods };
  }
}

/** The connection of every registrar in the app: one per WarrenModule. */
function connectionsOf(providers: InstanceWrapper[]): string[] {
  const registrars = new Set<HandlerRegistrar>();
  for (const wrapper of providers) if (wrapper.instance instanceof HandlerRegistrar) registrars.add(wrapper.instance);
  return [...registrars].map((r) => r.connection);
}

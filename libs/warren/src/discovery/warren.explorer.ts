import { type BeforeApplicationShutdown, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { ConsumerRegistry } from '../consumer/consumer-registry.js';
import { invokeHandler } from '../consumer/handler-invoker.js';
import { getHandlerMetadata, type HandlerMetadata } from '../decorators/handler-metadata.js';
import type { RpcHandlerExtra } from '../decorators/rpc-handler.decorator.js';
import type { Handler } from '../consumer/handler-invoker.js';
import type { DeliveryHandler } from '../consumer/message-consumer.js';
import { RpcResponder } from '../rpc/rpc-responder.js';
import { type HandlerCollection, HandlerFactory } from './handler-factory.js';

/**
 * Finds every decorated handler method in the app at boot and hands it to the registry, which
 * checks the whole topology, declares it, and only then starts the consumers.
 */
@Injectable()
export class WarrenExplorer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Warren');
  private started = false;
  private stopping = false;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly registry: ConsumerRegistry,
    private readonly responder: RpcResponder,
    private readonly handlers: HandlerFactory,
  ) {}

  /** True once the whole topology is declared and every consumer started, until shutdown begins. */
  get ready(): boolean {
    return this.started && !this.stopping;
  }

  async onApplicationBootstrap(): Promise<void> {
    // One object can sit behind several tokens (useExisting, the same useValue in two modules):
    // its handlers are registered once.
    const seen = new Set<object>();
    for (const wrapper of this.discovery.getProviders()) this.explore(wrapper, 'providers', seen);
    for (const wrapper of this.discovery.getControllers()) this.explore(wrapper, 'controllers', seen);
    await this.registry.start();
    this.started = true;
  }

  beforeApplicationShutdown(): void {
    this.stopping = true;
  }

  private explore(wrapper: InstanceWrapper, collection: HandlerCollection, seen: Set<object>): void {
    if (wrapper.isAlias) return;
    // A request-scoped provider's static instance is an unconstructed object of its class: enough
    // to read the class's decorators. (A request-scoped useFactory provider has none: no class to
    // read until a request runs the factory.)
    const instance = wrapper.instance as Record<string, unknown> | undefined;
    if (!instance || typeof instance !== 'object' || seen.has(instance)) return;
    const prototype = Object.getPrototypeOf(instance);
    if (!prototype || prototype === Object.prototype) return;
    const methods = this.scanner
      .getAllMethodNames(prototype)
      .map((method) => [method, getHandlerMetadata(prototype, method)] as const)
      .filter((entry): entry is readonly [string, HandlerMetadata[]] => entry[1] !== undefined);
    if (methods.length === 0) return;
    seen.add(instance);
    const className = instance.constructor.name;
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

  private deliveryHandler(metadata: HandlerMetadata, fn: Handler, label: string): DeliveryHandler {
    if (metadata.kind === 'rpc') return this.responder.responderFor(fn, label, metadata.extra as RpcHandlerExtra);
    return (payload, context) => invokeHandler(fn, payload, context);
  }
}

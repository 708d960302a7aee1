import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { ConsumerRegistry } from '../consumer/consumer-registry.js';
import { invokeHandler } from '../consumer/handler-invoker.js';
import { getHandlerMetadata, type HandlerMetadata } from '../decorators/handler-metadata.js';
import type { RpcHandlerExtra } from '../decorators/rpc-handler.decorator.js';
import type { Handler } from '../consumer/handler-invoker.js';
import type { DeliveryHandler } from '../consumer/message-consumer.js';
import { RpcResponder } from '../rpc/rpc-responder.js';

/**
 * Finds every decorated handler method in the app at boot and hands it to the registry, which
 * checks the whole topology, declares it, and only then starts the consumers.
 */
@Injectable()
export class WarrenExplorer implements OnApplicationBootstrap {
  private readonly logger = new Logger('Warren');

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly registry: ConsumerRegistry,
    private readonly responder: RpcResponder,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const wrappers: InstanceWrapper[] = [...this.discovery.getProviders(), ...this.discovery.getControllers()];
    for (const wrapper of wrappers) this.explore(wrapper);
    await this.registry.start();
  }

  private explore(wrapper: InstanceWrapper): void {
    const instance = wrapper.instance as Record<string, unknown> | undefined;
    if (!instance || typeof instance !== 'object') return;
    const prototype = Object.getPrototypeOf(instance);
    if (!prototype || prototype === Object.prototype) return;
    for (const method of this.scanner.getAllMethodNames(prototype)) {
      const handlers = getHandlerMetadata(prototype, method);
      if (!handlers) continue;
      const label = `${instance.constructor.name}.${method}`;
      if (!wrapper.isDependencyTreeStatic()) {
        this.logger.warn(`${label}: request-scoped handler providers are not supported yet; handler skipped`);
        continue;
      }
      const fn = (instance[method] as (...args: unknown[]) => unknown).bind(instance);
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

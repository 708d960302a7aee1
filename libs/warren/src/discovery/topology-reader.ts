import type { DynamicModule, INestApplicationContext, LoggerService, LogLevel, Type } from '@nestjs/common';
import { ModulesContainer, NestFactory } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import { runWithoutBroker } from '../connection/without-broker.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import { DEFAULT_CONNECTION } from '../warren.options.js';
import { type ConnectionTopology, TOPOLOGY_READER, type WarrenTopology } from '../registry/topology-view.js';

type TopologyReader = { [TOPOLOGY_READER](): { booted: boolean; topology: ConnectionTopology } };

/**
 * The whole topology `app` declared, every connection's: exchanges, queues and bindings with the
 * methods (or module options) that declared each, and every handler with its kind, queue and
 * contract. Read from the registries after discovery, so call it once the app is initialised
 * (`NestFactory.create…()`, `app.init()`, a compiled TestingModule).
 */
export function describeTopology(app: INestApplicationContext): WarrenTopology {
  const registries = new Set<TopologyReader>();
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.providers.values()) {
      const instance = wrapper.instance as Partial<TopologyReader> | undefined;
      if (instance && typeof instance[TOPOLOGY_READER] === 'function') registries.add(instance as TopologyReader);
    }
  }
  const read = [...registries].map((r) => r[TOPOLOGY_READER]());
  if (read.some((r) => !r.booted)) {
    throw new WarrenConfigurationError(
      'describeTopology(app): the app is not initialised yet; Warren finds its handlers when the app boots ' +
        '(onApplicationBootstrap): call it after app.init() or app.listen()',
    );
  }
  const connections = read.map((r) => r.topology);
  connections.sort((a, b) =>
    a.connection === b.connection
      ? 0
      : a.connection === DEFAULT_CONNECTION
        ? -1
        : b.connection === DEFAULT_CONNECTION
          ? 1
          : a.connection.localeCompare(b.connection),
  );
  return { connections };
}

export interface BootWithoutBrokerOptions {
  /** Nest's logger option for the boot. Default `false`: a read-out prints nothing of its own. */
  logger?: LoggerService | LogLevel[] | false;
}

/**
 * Boots `module` as an application context whose Warren connections all use a private in-memory
 * broker instead of their URLs: nothing is sent to RabbitMQ, no broker needs to run, and the
 * boot checks and declares the topology exactly as a real one would (a contradiction fails it
 * the same way). For reading the topology (`describeTopology`, AsyncAPI, `warren topology`);
 * close it when done. The app's other providers boot as usual: a database client still connects.
 */
export async function bootWithoutBroker(
  module: Type | DynamicModule,
  options: BootWithoutBrokerOptions = {},
): Promise<INestApplicationContext> {
  const url = `memory://warren-topology-${randomUUID()}`;
  return runWithoutBroker(url, () =>
    NestFactory.createApplicationContext(module, { logger: options.logger ?? false, abortOnError: false }),
  );
}

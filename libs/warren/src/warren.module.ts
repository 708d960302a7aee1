import { type DynamicModule, type FactoryProvider, type InjectionToken, Module, type Provider } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService, ExternalContextCreator, MetadataScanner, ModuleRef } from '@nestjs/core';
import { WarrenConnection } from './connection/warren-connection.js';
import { HandlerFactory } from './discovery/handler-factory.js';
import { WarrenExplorer } from './discovery/warren.explorer.js';
import { WarrenHealthIndicator } from './health/warren-health.indicator.js';
import { Publisher } from './publisher/publisher.js';
import { ConsumerLifecycle } from './registry/consumer-lifecycle.js';
import { ConsumerRegistry } from './registry/consumer-registry.js';
import { DeliveryObservers } from './registry/delivery-observers.js';
import { HandlerRegistrar } from './registry/handler-registrar.js';
import { checkModuleTopology, TopologyRegistry } from './registry/topology-registry.js';
import { RpcClient } from './rpc/rpc-client.js';
import { RpcResponder } from './rpc/rpc-responder.js';
import { delayLadderShape } from './topology/delay-ladder.js';
import { WARREN_DEFAULTS } from './warren.defaults.js';
import { WarrenConfigurationError } from './warren.errors.js';
import { MessageCodecs } from './codec/codecs.js';
import {
  connectionNameOf,
  DEFAULT_CONNECTION,
  WARREN_MODULE_OPTIONS,
  type WarrenModuleAsyncOptions,
  type WarrenModuleOptions,
  type WarrenOptionsFactory,
} from './warren.options.js';
import { warrenToken } from './warren.tokens.js';

// Boot waits for the broker here (unless the app asks not to), so a broker that is down fails the
// app with a clear error instead of handlers that silently never receive anything.
async function connect(options: WarrenModuleOptions): Promise<WarrenConnection> {
  // Checked before connecting: a module that fails to build closes nothing it opened.
  checkModuleTopology(options);
  new MessageCodecs(options.codecs);
  delayLadderShape(options.delayLadder);
  const connection = new WarrenConnection(options);
  if (options.waitForBroker ?? WARREN_DEFAULTS.waitForBroker) await connection.connect();
  else await connection.connectInBackground();
  return connection;
}

/** What a connection's module exports, under the connection's tokens. */
const EXPORTED = [
  WARREN_MODULE_OPTIONS,
  WarrenConnection,
  Publisher,
  ConsumerRegistry,
  RpcClient,
  WarrenHealthIndicator,
];

/**
 * A connection's parts, each under `warrenToken(Part, name)`: the class itself for the default
 * connection, a string of its own for a named one. Nest's `app.get(Publisher)` takes the last
 * module that holds the class token, so a named module that held class tokens, even unexported,
 * would take `app.get(Publisher)` away from the default connection.
 */
function connectionProviders(name: string): Provider[] {
  const t = (part: unknown): InjectionToken => warrenToken(part, name);
  // Every part is built here, with its dependencies spelled out in its constructor's order.
  const build = <T>(Part: new (...deps: any[]) => T, ...inject: InjectionToken[]): FactoryProvider<T> => ({
    provide: t(Part),
    useFactory: (...deps: unknown[]) => new Part(...deps),
    inject,
  });
  const options = t(WARREN_MODULE_OPTIONS);
  const connection = t(WarrenConnection);
  return [
    { provide: connection, useFactory: connect, inject: [options] },
    build(Publisher, connection, options),
    build(RpcClient, connection, options),
    build(RpcResponder, connection, options),
    build(TopologyRegistry, connection, options),
    build(DeliveryObservers),
    build(ConsumerLifecycle, connection, t(TopologyRegistry), t(Publisher), t(DeliveryObservers), options),
    build(ConsumerRegistry, t(ConsumerLifecycle), t(TopologyRegistry), t(DeliveryObservers), options),
    build(HandlerRegistrar, t(ConsumerLifecycle), t(RpcResponder), options),
    build(HandlerFactory, ExternalContextCreator, ModuleRef),
    build(
      WarrenExplorer,
      DiscoveryService,
      MetadataScanner,
      t(HandlerRegistrar),
      t(ConsumerLifecycle),
      t(HandlerFactory),
      options,
    ),
    build(WarrenHealthIndicator, connection, t(ConsumerLifecycle)),
  ];
}

function connectionModule(name: string, optionsProvider: Provider[], imports: DynamicModule['imports']): DynamicModule {
  return {
    module: WarrenModule,
    global: true,
    imports,
    providers: [...optionsProvider, ...connectionProviders(name)],
    exports: EXPORTED.map((part) => warrenToken(part, name)),
  };
}

@Module({})
export class WarrenModule {
  static forRoot(options: WarrenModuleOptions): DynamicModule {
    const name = checkedName(aliased(options, 'forRoot()'), 'forRoot');
    const provide = warrenToken(WARREN_MODULE_OPTIONS, name);
    return connectionModule(name, [{ provide, useValue: canonical(options, name) }], [DiscoveryModule]);
  }

  static forRootAsync(options: WarrenModuleAsyncOptions): DynamicModule {
    const name = checkedName(aliased(options, 'forRootAsync()'), 'forRootAsync');
    return connectionModule(name, asyncOptionsProviders(options, name), [DiscoveryModule, ...(options.imports ?? [])]);
  }
}

/**
 * The connection's name from `connection` or its older alias `name`; both at once must agree.
 * `where` names the call in the error.
 */
function aliased(options: { connection?: unknown; name?: unknown }, where: string): unknown {
  const { connection, name } = options;
  if (connection !== undefined && name !== undefined && connection !== name) {
    throw new WarrenConfigurationError(
      `WarrenModule.${where}: connection "${String(connection)}" and name "${String(name)}" disagree; ` +
        `name is the older name of connection: give connection only`,
    );
  }
  return connection ?? name;
}

/**
 * The options as the connection's parts read them: the name under `name`, the client-provided name
 * under `clientProvidedName`, whichever spelling the app used.
 */
function canonical(options: WarrenModuleOptions, name: string): WarrenModuleOptions {
  const { clientProvidedName, connectionName } = options;
  if (clientProvidedName !== undefined && connectionName !== undefined && clientProvidedName !== connectionName) {
    throw new WarrenConfigurationError(
      `WarrenModule options: clientProvidedName "${clientProvidedName}" and connectionName "${connectionName}" disagree; ` +
        `connectionName is the older name of clientProvidedName: give clientProvidedName only`,
    );
  }
  const { connection: _connection, connectionName: _old, ...rest } = options;
  const client = clientProvidedName ?? connectionName;
  return {
    ...rest,
    ...(name === DEFAULT_CONNECTION ? {} : { name }),
    ...(client === undefined ? {} : { clientProvidedName: client }),
  };
}

function checkedName(name: unknown, method: string): string {
  if (name !== undefined && (typeof name !== 'string' || name === '')) {
    throw new WarrenConfigurationError(
      `WarrenModule.${method}(): name must be a non-empty string, got ${typeof name === 'string' ? '""' : String(name)}`,
    );
  }
  return connectionNameOf({ name });
}

function asyncOptionsProviders(options: WarrenModuleAsyncOptions, name: string): Provider[] {
  const provide = warrenToken(WARREN_MODULE_OPTIONS, name);
  // The factory's options carry the name given to forRootAsync(), which the tokens were built from.
  const named = async (resolved: WarrenModuleOptions | Promise<WarrenModuleOptions>): Promise<WarrenModuleOptions> => {
    const value = await resolved;
    const returned = aliased(value, `forRootAsync({ connection: "${name}" })'s factory`);
    if (returned !== undefined && returned !== name) {
      throw new WarrenConfigurationError(
        `WarrenModule.forRootAsync({ connection: "${name}" }): the factory returned the connection name ` +
          `"${String(returned)}"; give the name to forRootAsync() only`,
      );
    }
    return canonical(value, name);
  };
  if (options.useFactory) {
    const factory = options.useFactory;
    return [{ provide, useFactory: (...args: unknown[]) => named(factory(...args)), inject: options.inject ?? [] }];
  }
  const factory = options.useClass ?? options.useExisting;
  if (!factory) {
    throw new WarrenConfigurationError('WarrenModule.forRootAsync() needs useFactory, useClass or useExisting');
  }
  const fromFactory: Provider = {
    provide,
    useFactory: (f: WarrenOptionsFactory) => named(f.createWarrenOptions()),
    inject: [factory],
  };
  return options.useClass ? [fromFactory, { provide: factory, useClass: factory }] : [fromFactory];
}

import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService, ExternalContextCreator, MetadataScanner, ModuleRef } from '@nestjs/core';
import { WarrenConnection } from './connection/warren-connection.js';
import { ConsumerRegistry } from './consumer/consumer-registry.js';
import { HandlerFactory } from './discovery/handler-factory.js';
import { WarrenExplorer } from './discovery/warren.explorer.js';
import { WarrenHealthIndicator } from './health/warren-health.indicator.js';
import { Publisher } from './publisher/publisher.js';
import { RpcClient } from './rpc/rpc-client.js';
import { RpcResponder } from './rpc/rpc-responder.js';
import { WarrenConfigurationError } from './warren.errors.js';
import {
  connectionNameOf,
  DEFAULT_CONNECTION,
  WARREN_MODULE_OPTIONS,
  type WarrenModuleAsyncOptions,
  type WarrenModuleOptions,
  type WarrenOptionsFactory,
} from './warren.options.js';
import { warrenToken } from './warren.tokens.js';

// Boot waits for the broker here, so a broker that is down fails the app with a clear error
// instead of handlers that silently never receive anything.
async function connect(options: WarrenModuleOptions): Promise<WarrenConnection> {
  const connection = new WarrenConnection(options);
  await connection.connect();
  return connection;
}

const defaultProviders: Provider[] = [
  { provide: WarrenConnection, useFactory: connect, inject: [WARREN_MODULE_OPTIONS] },
  Publisher,
  ConsumerRegistry,
  RpcResponder,
  RpcClient,
  HandlerFactory,
  WarrenExplorer,
  WarrenHealthIndicator,
];
const defaultExports = [
  WARREN_MODULE_OPTIONS,
  WarrenConnection,
  Publisher,
  ConsumerRegistry,
  RpcClient,
  WarrenHealthIndicator,
];

/**
 * A named connection's parts, under tokens of their own only. Nest's `app.get(Publisher)` takes the
 * last module that holds the class token, so a named module that kept class tokens, even
 * unexported, would take `app.get(Publisher)` away from the default connection.
 */
function namedProviders(name: string): Provider[] {
  const t = (part: unknown) => warrenToken(part, name);
  const options = t(WARREN_MODULE_OPTIONS);
  return [
    { provide: t(WarrenConnection), useFactory: connect, inject: [options] },
    {
      provide: t(Publisher),
      useFactory: (c: WarrenConnection, o: WarrenModuleOptions) => new Publisher(c, o),
      inject: [t(WarrenConnection), options],
    },
    {
      provide: t(ConsumerRegistry),
      useFactory: (c: WarrenConnection, o: WarrenModuleOptions, p: Publisher) => new ConsumerRegistry(c, o, p),
      inject: [t(WarrenConnection), options, t(Publisher)],
    },
    {
      provide: t(RpcResponder),
      useFactory: (c: WarrenConnection, o: WarrenModuleOptions) => new RpcResponder(c, o),
      inject: [t(WarrenConnection), options],
    },
    {
      provide: t(RpcClient),
      useFactory: (c: WarrenConnection, o: WarrenModuleOptions) => new RpcClient(c, o),
      inject: [t(WarrenConnection), options],
    },
    {
      provide: t(HandlerFactory),
      useFactory: (creator: ExternalContextCreator, moduleRef: ModuleRef) => new HandlerFactory(creator, moduleRef),
      inject: [ExternalContextCreator, ModuleRef],
    },
    {
      provide: t(WarrenExplorer),
      useFactory: (
        discovery: DiscoveryService,
        scanner: MetadataScanner,
        registry: ConsumerRegistry,
        responder: RpcResponder,
        handlers: HandlerFactory,
        o: WarrenModuleOptions,
      ) => new WarrenExplorer(discovery, scanner, registry, responder, handlers, o),
      inject: [DiscoveryService, MetadataScanner, t(ConsumerRegistry), t(RpcResponder), t(HandlerFactory), options],
    },
    {
      provide: t(WarrenHealthIndicator),
      useFactory: (c: WarrenConnection, registry: ConsumerRegistry, explorer: WarrenExplorer) =>
        new WarrenHealthIndicator(c, registry, explorer),
      inject: [t(WarrenConnection), t(ConsumerRegistry), t(WarrenExplorer)],
    },
  ];
}

function connectionModule(name: string, optionsProvider: Provider[], imports: DynamicModule['imports']): DynamicModule {
  if (name === DEFAULT_CONNECTION) {
    return {
      module: WarrenModule,
      global: true,
      imports,
      providers: [...optionsProvider, ...defaultProviders],
      exports: defaultExports,
    };
  }
  return {
    module: WarrenModule,
    global: true,
    imports,
    providers: [...optionsProvider, ...namedProviders(name)],
    exports: defaultExports.map((part) => warrenToken(part, name)),
  };
}

@Module({})
export class WarrenModule {
  static forRoot(options: WarrenModuleOptions): DynamicModule {
    const name = checkedName(options.name, 'forRoot');
    const provide = warrenToken(WARREN_MODULE_OPTIONS, name);
    return connectionModule(name, [{ provide, useValue: options }], [DiscoveryModule]);
  }

  static forRootAsync(options: WarrenModuleAsyncOptions): DynamicModule {
    const name = checkedName(options.name, 'forRootAsync');
    return connectionModule(name, asyncOptionsProviders(options, name), [DiscoveryModule, ...(options.imports ?? [])]);
  }
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
    if (value.name !== undefined && connectionNameOf(value) !== name) {
      throw new WarrenConfigurationError(
        `WarrenModule.forRootAsync({ name: "${name}" }): the factory returned the name "${value.name}"; give the name to forRootAsync() only`,
      );
    }
    return name === DEFAULT_CONNECTION ? value : { ...value, name };
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

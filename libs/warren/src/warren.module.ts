import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { WarrenConnection } from './connection/warren-connection.js';
import { ConsumerRegistry } from './consumer/consumer-registry.js';
import { HandlerFactory } from './discovery/handler-factory.js';
import { WarrenExplorer } from './discovery/warren.explorer.js';
import { WarrenHealthIndicator } from './health/warren-health.indicator.js';
import { Publisher } from './publisher/publisher.js';
import { RpcClient } from './rpc/rpc-client.js';
import { RpcResponder } from './rpc/rpc-responder.js';
import {
  WARREN_MODULE_OPTIONS,
  type WarrenModuleAsyncOptions,
  type WarrenModuleOptions,
  type WarrenOptionsFactory,
} from './warren.options.js';

const connectionProvider: Provider = {
  provide: WarrenConnection,
  // Boot waits for the broker here, so a broker that is down fails the app with a clear error
  // instead of handlers that silently never receive anything.
  useFactory: async (options: WarrenModuleOptions) => {
    const connection = new WarrenConnection(options);
    await connection.connect();
    return connection;
  },
  inject: [WARREN_MODULE_OPTIONS],
};

const providers: Provider[] = [
  connectionProvider,
  Publisher,
  ConsumerRegistry,
  RpcResponder,
  RpcClient,
  HandlerFactory,
  WarrenExplorer,
  WarrenHealthIndicator,
];
const exported = [
  WARREN_MODULE_OPTIONS,
  WarrenConnection,
  Publisher,
  ConsumerRegistry,
  RpcClient,
  WarrenHealthIndicator,
];

@Module({})
export class WarrenModule {
  static forRoot(options: WarrenModuleOptions): DynamicModule {
    return {
      module: WarrenModule,
      global: true,
      imports: [DiscoveryModule],
      providers: [{ provide: WARREN_MODULE_OPTIONS, useValue: options }, ...providers],
      exports: exported,
    };
  }

  static forRootAsync(options: WarrenModuleAsyncOptions): DynamicModule {
    return {
      module: WarrenModule,
      global: true,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: [...asyncOptionsProviders(options), ...providers],
      exports: exported,
    };
  }
}

function asyncOptionsProviders(options: WarrenModuleAsyncOptions): Provider[] {
  if (options.useFactory) {
    return [{ provide: WARREN_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }];
  }
  const factory = options.useClass ?? options.useExisting;
  if (!factory) throw new Error('WarrenModule.forRootAsync() needs useFactory, useClass or useExisting');
  const fromFactory: Provider = {
    provide: WARREN_MODULE_OPTIONS,
    useFactory: (f: WarrenOptionsFactory) => f.createWarrenOptions(),
    inject: [factory],
  };
  return options.useClass ? [fromFactory, { provide: factory, useClass: factory }] : [fromFactory];
}

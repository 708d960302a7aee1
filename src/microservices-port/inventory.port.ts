import { type DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientsModule } from '@nestjs/microservices';
import {
  type WarrenClientOptions,
  WarrenClientProxy,
  WarrenServer,
  type WarrenServerOptions,
} from 'nestjs-warren/microservices';
import { InventoryClient, INVENTORY } from './inventory.client.js';
import { InventoryController } from './inventory.controller.js';

// Porting from the stock RMQ transport means changing the wiring below, not the handlers.
//
// Before (server):
//   NestFactory.createMicroservice(InventoryServiceModule, {
//     transport: Transport.RMQ,
//     options: { urls: [url], queue: 'inventory_queue', queueOptions: { durable: true } },
//   });
// Before (client):
//   ClientsModule.register([
//     { name: INVENTORY, transport: Transport.RMQ, options: { urls: [url], queue: 'inventory_queue' } },
//   ]);
//
// The RMQ transport puts every pattern of a service on one queue with a `{ pattern, data }`
// envelope. Warren gives each message pattern its own queue (`inventory.level`), and each event
// pattern a binding on the `warren.events` topic exchange (with `service: 'inventory'`, the
// queue `inventory.inventory.changed`, shared by the service's instances as the RMQ queue was),
// so a Warren `@RpcHandler`, `RpcClient` or `@Subscribe` in another app can take part.

@Module({ controllers: [InventoryController] })
export class InventoryServiceModule {}

/** The server's strategy (was `transport: Transport.RMQ`). */
export function inventoryServer(options: WarrenServerOptions): WarrenServer {
  return new WarrenServer({ service: 'inventory', ...options });
}

/** The client side (was `transport: Transport.RMQ`). */
@Module({})
export class InventoryClientModule {
  static register(options: WarrenClientOptions): DynamicModule {
    return {
      module: InventoryClientModule,
      imports: [ClientsModule.register([{ name: INVENTORY, customClass: WarrenClientProxy, options }])],
      providers: [InventoryClient],
      exports: [InventoryClient],
    };
  }
}

/** Runs the inventory service on its own (not one of the tutorial programs of `main.ts`). */
export async function runInventoryService(url: string): Promise<void> {
  const app = await NestFactory.createMicroservice(InventoryServiceModule, { strategy: inventoryServer({ url }) });
  app.enableShutdownHooks();
  await app.listen();
}

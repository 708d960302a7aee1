import { Injectable } from '@nestjs/common';
import { Ctx, defineEvent, Header, Payload, Subscribe, WarrenContext } from 'nestjs-warren';
// Types only: with isolatedModules, a type-only name is imported as one.
import type { WarrenModuleOptions } from 'nestjs-warren';

export interface OrderPlacedEvent {
  id: string;
  total: number;
}

export const ORDERS_EXCHANGE = `compat.nest12.orders`;
export const OrderPlaced = defineEvent<OrderPlacedEvent>(ORDERS_EXCHANGE, 'order.placed');

@Injectable()
export class OrdersListener {
  readonly seen: { id: string; tenant: unknown; routingKey: string }[] = [];

  @Subscribe(OrderPlaced, { exchangeOptions: { autoDelete: true, durable: false } })
  onPlaced(@Payload('id') id: string, @Header('x-tenant') tenant: unknown, @Ctx() ctx: WarrenContext): void {
    this.seen.push({ id, tenant, routingKey: ctx.routingKey });
  }
}

/** The app's Warren options: RabbitMQ from the environment, Warren's in-process broker without it. */
export function warrenOptions(): WarrenModuleOptions {
  return { url: process.env.RABBITMQ_URL ?? 'memory://', connectTimeoutMs: 10_000 };
}

/**
 * Type-level test of contract handlers that take their arguments through parameter decorators,
 * checked by `tsc --noEmit` in `npm test`: these must compile, and every `@ts-expect-error` below
 * must be an error. The type checker cannot see parameter decorators, so a contract handler's
 * first parameter must take the payload, one of its properties or the WarrenContext; anything
 * else says so with `@Subscribe<any>(...)` / `@RpcHandler<any, Reply>(...)`.
 */
import { createParamDecorator, type ExecutionContext, Injectable, ParseIntPipe } from '@nestjs/common';
import { Ctx, defineEvent, defineRpc, Payload, RpcHandler, Subscribe, type WarrenContext } from 'nestjs-warren';

interface Order {
  id: string;
  total: number;
  tags?: string[];
}
const OrderCreated = defineEvent<Order>('orders', 'order.created');
const GetOrder = defineRpc<{ id: string }, Order>('orders.get');
const Tenant = createParamDecorator((_data: unknown, ctx: ExecutionContext) =>
  String(ctx.switchToRpc().getContext<WarrenContext>().headers['x-tenant']),
);

@Injectable()
export class DecoratedHandlers {
  @Subscribe(OrderCreated)
  onId(@Payload('id') id: string, @Ctx() ctx: WarrenContext): void {
    void [id, ctx];
  }

  @Subscribe(OrderCreated)
  onWhole(@Payload() order: Order, @Ctx() ctx: WarrenContext): void {
    void [order, ctx];
  }

  @Subscribe(OrderCreated)
  onContextFirst(@Ctx() ctx: WarrenContext, @Payload() order: Order): void {
    void [order, ctx];
  }

  @Subscribe(OrderCreated)
  onFields(@Payload('id') id: string, @Payload('total') total: number): void {
    void [id, total];
  }

  @Subscribe(OrderCreated)
  onOptional(@Payload('tags') tags: string[] | undefined): void {
    void tags;
  }

  @Subscribe(OrderCreated)
  onNothing(): void {}

  @RpcHandler(GetOrder)
  get(@Payload('id') id: string, @Ctx() ctx: WarrenContext): Order {
    void ctx;
    return { id, total: 1 };
  }

  @RpcHandler(GetOrder)
  async getAsync(@Payload('id') id: string): Promise<Order> {
    return { id, total: 1 };
  }

  // A custom parameter decorator first: the payload check is waived explicitly.
  @Subscribe<any>(OrderCreated)
  onTenant(@Tenant() tenant: string, @Payload('total') total: number): void {
    void [tenant, total];
  }

  // A pipe that changes the type: the payload check is waived, the reply is still checked.
  @RpcHandler<any, Order>(GetOrder)
  getParsed(@Payload('id', ParseIntPipe) id: number): Order {
    return { id: String(id), total: 1 };
  }
}

@Injectable()
export class WrongDecoratedHandlers {
  // @ts-expect-error no property of the payload is a boolean
  @Subscribe(OrderCreated)
  onFlag(@Payload('id') flag: boolean): void {
    void flag;
  }

  // @ts-expect-error `tags` is optional: the parameter must take undefined
  @Subscribe(OrderCreated)
  onTags(@Payload('tags') tags: string[]): void {
    void tags;
  }

  // @ts-expect-error the reply misses `total`, parameter decorators or not
  @RpcHandler(GetOrder)
  get(@Payload('id') id: string): { id: string } {
    return { id };
  }

  // @ts-expect-error waiving the payload check keeps the reply's: a string is not an Order
  @RpcHandler<any, Order>(GetOrder)
  getText(@Payload('id', ParseIntPipe) id: number): string {
    return String(id);
  }
}

/**
 * Type-level test of RPC and event contracts, checked by `tsc --noEmit` in `npm test`: every
 * `@ts-expect-error` below must be an error, or the type check fails.
 */
import { Injectable } from '@nestjs/common';
import { type BatchContext, defineEvent, defineRpc, Publisher, RpcClient, RpcHandler, Subscribe } from 'nestjs-warren';

const Fibonacci = defineRpc<number, number>('rpc_queue');
const OrderPlaced = defineEvent<{ id: string; total: number }>('orders', 'order.placed');

export async function clientSide(client: RpcClient, publisher: Publisher): Promise<number> {
  const n: number = await client.call(Fibonacci, 30);
  // @ts-expect-error a string is not the contract's request type
  await client.call(Fibonacci, '30');
  // @ts-expect-error the reply is a number, not a string
  const s: string = await client.call(Fibonacci, 30);
  await publisher.publish(OrderPlaced, { id: 'a', total: 3 });
  // @ts-expect-error the event payload misses `total`
  await publisher.publish(OrderPlaced, { id: 'a' });
  void s;
  return n;
}

@Injectable()
export class RightHandlers {
  @RpcHandler(Fibonacci)
  fib(n: number): number {
    return n;
  }

  @RpcHandler(Fibonacci)
  async fibAsync(n: number): Promise<number> {
    return n;
  }

  @Subscribe(OrderPlaced)
  onPlaced(order: { id: string; total: number }): void {
    void order;
  }

  // A batch handler of the contract takes the payloads and their contexts.
  @Subscribe(OrderPlaced, { queue: 'orders.batch', batch: { size: 100 } })
  onPlacedBatch(orders: { id: string; total: number }[], contexts: BatchContext[]): void {
    void orders;
    void contexts;
  }
}

@Injectable()
export class WrongHandlers {
  // @ts-expect-error the handler takes a string, the contract sends a number
  @RpcHandler(Fibonacci)
  fib(n: string): number {
    return Number(n);
  }

  // @ts-expect-error the handler returns a string, the contract promises a number
  @RpcHandler(Fibonacci)
  fibText(n: number): string {
    return String(n);
  }

  // @ts-expect-error the handler expects a field the event does not carry
  @Subscribe(OrderPlaced)
  onPlaced(order: { id: string; customer: string }): void {
    void order;
  }

  // @ts-expect-error a batch handler takes an array of payloads, not one
  @Subscribe(OrderPlaced, { queue: 'orders.batch', batch: { size: 100 } })
  onPlacedBatch(order: { id: string; total: number }): void {
    void order;
  }
}

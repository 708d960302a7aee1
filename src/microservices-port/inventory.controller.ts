import { Controller } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';

export interface StockChange {
  sku: string;
  delta: number;
}

/**
 * An inventory service as it was written for the stock RMQ transport; porting it to Warren left
 * it as it is (patterns, `@Payload()`, `RpcException`). A handler that took `@Ctx() RmqContext`
 * gets a WarrenContext instead: the raw message is `context.message`, and manual acks are
 * `context.ack()` rather than `getChannelRef().ack(getMessage())`.
 */
@Controller()
export class InventoryController {
  private readonly stock = new Map<string, number>();
  /** The changes applied, in order. */
  readonly applied: StockChange[] = [];

  @MessagePattern('inventory.level')
  level(@Payload() sku: string): { sku: string; level: number } {
    if (!this.stock.has(sku)) throw new RpcException({ code: 'UNKNOWN_SKU', message: `no such sku: ${sku}` });
    return { sku, level: this.stock.get(sku)! };
  }

  @MessagePattern({ cmd: 'inventory.total' })
  total(): number {
    return [...this.stock.values()].reduce((sum, level) => sum + level, 0);
  }

  @EventPattern('inventory.changed')
  onChanged(@Payload() change: StockChange): void {
    this.stock.set(change.sku, (this.stock.get(change.sku) ?? 0) + change.delta);
    this.applied.push(change);
  }
}

import {
  BadRequestException,
  ConflictException,
  Injectable,
  Logger,
  ServiceUnavailableException,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Publisher, RpcClient, Subscribe } from 'nestjs-warren';
import {
  OrderPlaced,
  type OrderPlacedEvent,
  PROGRESS_QUEUE,
  StepCompleted,
  type StepCompletedEvent,
  StockCheck,
  type StockCheckReply,
} from './contracts.js';
import type { OrderRequest } from './order-request.js';
import { type Order, OrderStore } from './order-store.js';

/** Long enough for a loaded stock service, short enough that a client is not left hanging. */
export const STOCK_CHECK_TIMEOUT_MS = 5000;

/**
 * The API's side of the service: accepts an order once the stock service agrees, stores it,
 * announces it, and keeps its status up to date from the workers' progress reports.
 */
@Injectable()
export class OrdersService {
  private readonly logger = new Logger('OrdersApi');

  constructor(
    private readonly store: OrderStore,
    private readonly publisher: Publisher,
    private readonly rpc: RpcClient,
  ) {}

  /** Resolves once the broker has confirmed the order-placed event; the workers run after that. */
  async place(request: OrderRequest): Promise<Order> {
    const stock = await this.checkStock(request.products_ids);
    if (stock.unknown_ids.length > 0) {
      throw new BadRequestException(`unknown product ids: ${stock.unknown_ids.join(', ')}`);
    }
    if (stock.out_of_stock_ids.length > 0) {
      throw new ConflictException(`out of stock: product ids ${stock.out_of_stock_ids.join(', ')}`);
    }
    const placed: OrderPlacedEvent = {
      id: randomUUID(),
      customer_name: request.customer_name,
      products_ids: request.products_ids,
      total_cents: stock.total_cents,
      placed_at: new Date().toISOString(),
    };
    // Stored before it is announced: a worker's report can then never arrive for an order the
    // store does not have yet.
    const order = this.store.add(placed);
    try {
      await this.publisher.publish(OrderPlaced, placed, { messageId: placed.id });
    } catch (err) {
      // Unannounced, the order would stay "received" for ever: better refused than stuck.
      this.store.remove(placed.id);
      this.logger.error(`order ${placed.id} not announced, refused: ${(err as Error).message}`);
      throw new ServiceUnavailableException('the order could not be queued; try again');
    }
    return order;
  }

  get(id: string): Order | undefined {
    return this.store.get(id);
  }

  @Subscribe(StepCompleted, { queue: PROGRESS_QUEUE })
  onStepCompleted(report: StepCompletedEvent): void {
    const outcome = this.store.completeStep(report.order_id, report.step, report.worker, report.completed_at);
    // Reports for orders this process never stored come from before a restart: the in-memory
    // store lost those orders, so there is nothing to update and nothing to retry.
    if (outcome === 'unknown-order') this.logger.warn(`${report.step} report for unknown order ${report.order_id}`);
    else if (outcome === 'unknown-step') this.logger.warn(`report of unknown step "${report.step}" ignored`);
    else if (outcome === 'completed') this.logger.debug(`order ${report.order_id} completed`);
  }

  private async checkStock(ids: number[]): Promise<StockCheckReply> {
    try {
      return await this.rpc.call(StockCheck, { products_ids: ids }, { timeout: STOCK_CHECK_TIMEOUT_MS });
    } catch (err) {
      this.logger.error(`stock check failed: ${(err as Error).message}`);
      throw new ServiceUnavailableException('the stock service did not answer; try again');
    }
  }
}

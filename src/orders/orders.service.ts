import {
  BadRequestException,
  ConflictException,
  Injectable,
  Logger,
  Optional,
  ServiceUnavailableException,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import {
  FAILURE_HEADERS,
  RpcClient,
  RpcNoRouteError,
  RpcUnavailableError,
  Subscribe,
  WarrenConnection,
  type WarrenContext,
} from 'nestjs-warren';
import { Idempotent, Inbox, Outbox, type SqlQueryable } from 'nestjs-warren/outbox';
import {
  DEAD_LETTER_EXCHANGE,
  DEAD_LETTER_QUEUES,
  FAILURES_QUEUE,
  OrderPlaced,
  type OrderPlacedEvent,
  PROGRESS_QUEUE,
  StepCompleted,
  type StepCompletedEvent,
  STEPS,
  StockCheck,
  type StockCheckReply,
  WORKER_QUEUES,
} from './contracts.js';
import { OrdersDatabase } from './database.js';
import type { OrderRequest } from './order-request.js';
import { type Order, OrderStore } from './order-store.js';
import { StockService } from './stock.service.js';

/** Long enough for a loaded stock service, short enough that a client is not left hanging. */
export const STOCK_CHECK_TIMEOUT_MS = 5000;

/**
 * The API's side of the service: accepts an order once the stock service agrees, stores it with
 * its announcement in one transaction (the outbox), and keeps its status up to date from the
 * workers' progress reports (the inbox).
 */
@Injectable()
export class OrdersService {
  private readonly logger = new Logger('OrdersApi');

  constructor(
    private readonly store: OrderStore,
    private readonly db: OrdersDatabase,
    private readonly outbox: Outbox,
    private readonly inbox: Inbox,
    private readonly rpc: RpcClient,
    private readonly broker: WarrenConnection,
    /** This process's own stock service, when it runs one (every API process does). */
    @Optional() private readonly localStock?: StockService,
  ) {}

  /**
   * Resolves once the order and its order-placed event are committed together; the outbox's relay
   * publishes the event after that, however long the broker is away, and a crash in between
   * leaves it to the next relay pass, here or in another instance.
   */
  async place(request: OrderRequest): Promise<OrderPlacedEvent> {
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
    try {
      await this.db.transaction(async (tx) => {
        await this.store.add(tx, placed);
        await this.outbox.publish(tx, OrderPlaced, placed);
      });
    } catch (err) {
      this.logger.error(`order ${placed.id} not stored: ${(err as Error).message}`);
      throw new ServiceUnavailableException('the order could not be stored; try again');
    }
    return placed;
  }

  get(id: string): Promise<Order | undefined> {
    return this.store.get(id);
  }

  /** Whichever API instance gets a report records it; a copy of a report already recorded is acked unrun. */
  @Subscribe(StepCompleted, { queue: PROGRESS_QUEUE })
  @Idempotent()
  async onStepCompleted(report: StepCompletedEvent): Promise<void> {
    const outcome = await this.store.completeStep(
      this.inbox.transaction<SqlQueryable>(),
      report.order_id,
      report.step,
      report.worker,
      report.completed_at,
    );
    // An order is committed before its announcement, so a report for an unknown order comes from
    // another database (a misconfigured instance): nothing to update, nothing a retry would mend.
    if (outcome === 'unknown-order') this.logger.warn(`${report.step} report for unknown order ${report.order_id}`);
    else if (outcome === 'unknown-step') this.logger.warn(`report of unknown step "${report.step}" ignored`);
    else if (outcome === 'completed') this.logger.debug(`order ${report.order_id} completed`);
  }

  /**
   * A worker's dead letter, as the broker copies it here from `orders.dead-letters` (the original
   * stays in the worker queue's `.dlq` for `warren dlq redrive`): the order's step is `failed`,
   * with Warren's reason headers, until the redriven message is handled. Not `@Idempotent()`: a
   * redriven message that fails again comes back with the same message id, and must be recorded
   * again; recording is an upsert, so a duplicate changes nothing.
   */
  @Subscribe(DEAD_LETTER_EXCHANGE, '#', { queue: FAILURES_QUEUE })
  async onStepFailed(deadLetter: unknown, context: WarrenContext): Promise<void> {
    const headers = context.headers;
    const queue = headers[FAILURE_HEADERS.queue];
    const step = STEPS.find((s) => WORKER_QUEUES[s] === queue);
    const id = (deadLetter as { id?: unknown } | null)?.id;
    // Nothing a retry would mend: a dead letter of no worker queue, or a body that names no order.
    if (!step || typeof id !== 'string') {
      this.logger.warn(`dead letter of queue ${String(queue)} names no order step; ignored`);
      return;
    }
    const name = headers[FAILURE_HEADERS.errorName];
    const message = headers[FAILURE_HEADERS.errorMessage];
    const failedAt = headers[FAILURE_HEADERS.failedAt];
    const outcome = await this.store.failStep(id, step, {
      reason: String(headers[FAILURE_HEADERS.reason] ?? 'unknown'),
      error: [name, message].filter((part) => part !== undefined).join(': '),
      attempts: Number(headers[FAILURE_HEADERS.attempts] ?? 0),
      failed_at: typeof failedAt === 'string' ? failedAt : new Date().toISOString(),
    });
    if (outcome === 'unknown-order') this.logger.warn(`${step} dead letter for unknown order ${id}`);
    else
      this.logger.warn(
        `order ${id}: ${step} failed (${String(headers[FAILURE_HEADERS.reason])}); see ${DEAD_LETTER_QUEUES[step]}`,
      );
  }

  /**
   * Over RPC while the broker is there: any instance's stock service may answer. With the broker
   * away, this process's own stock service answers instead, so the order is still checked and
   * committed (201) and its announcement waits in the outbox until the broker is back. A call the
   * broker's loss cut short (its reply could never come) is asked again locally the same way, and
   * so is one no stock service could take: the broker has no queue for it yet (this process serves
   * HTTP before its own consumers have started, `waitForBroker: false`) or Warren has not reached
   * the broker yet.
   */
  private async checkStock(ids: number[]): Promise<StockCheckReply> {
    const request = { products_ids: ids };
    if (this.localStock && !this.broker.isConnected('publish')) return this.localStock.check(request);
    try {
      return await this.rpc.call(StockCheck, request, { timeout: STOCK_CHECK_TIMEOUT_MS });
    } catch (err) {
      const noStockService = err instanceof RpcNoRouteError || err instanceof RpcUnavailableError;
      if (this.localStock && (noStockService || !this.broker.isConnected('publish'))) {
        return this.localStock.check(request);
      }
      this.logger.error(`stock check failed: ${(err as Error).message}`);
      throw new ServiceUnavailableException('the stock service did not answer; try again');
    }
  }
}

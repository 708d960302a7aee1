import { Injectable, Logger, type Type } from '@nestjs/common';
import { hostname } from 'node:os';
import { Subscribe } from 'nestjs-warren';
import { Idempotent, Inbox, Outbox, type SqlQueryable } from 'nestjs-warren/outbox';
import {
  DEAD_LETTER_EXCHANGE,
  OrderPlaced,
  type OrderPlacedEvent,
  type Step,
  StepCompleted,
  WORKER_QUEUES,
} from './contracts.js';

/** `host:pid`: which of several competing instances of a worker did the step. */
export const WORKER_INSTANCE = `${hostname()}:${process.pid}`;

/**
 * What the departments' systems did, one row per effect in `department_effects`: the stand-in
 * for calling the real system. Written in the worker's inbox transaction, so an effect commits
 * with the record that the order was handled, or not at all.
 */
@Injectable()
export class DepartmentEffects {
  constructor(private readonly inbox: Inbox) {}

  async record(department: Step, orderId: string): Promise<void> {
    await this.inbox
      .transaction<SqlQueryable>()
      .query('INSERT INTO department_effects (order_id, department, worker) VALUES ($1, $2, $3)', [
        orderId,
        department,
        WORKER_INSTANCE,
      ]);
  }
}

// The three departments' systems are stand-ins that record their effect and log what the real
// ones would be sent. Each is a provider of its own, so a deployment swaps in the real client
// (SAP, the statistics tool, the printer's spooler) without touching the worker, and a test can
// watch what reached it. A real client outside the database is not rolled back with the
// transaction: it must be idempotent on the order id (docs/outbox.md, the limits).

@Injectable()
export class SalesSystem {
  private readonly logger = new Logger('SalesSystem');

  constructor(private readonly effects: DepartmentEffects) {}

  async record(order: OrderPlacedEvent): Promise<void> {
    await this.effects.record('sales', order.id);
    this.logger.log(`order ${order.id}: ${order.products_ids.length} item(s), ${formatCents(order.total_cents)}`);
  }
}

@Injectable()
export class MarketingStatistics {
  private readonly logger = new Logger('MarketingStatistics');

  constructor(private readonly effects: DepartmentEffects) {}

  async add(order: OrderPlacedEvent): Promise<void> {
    await this.effects.record('marketing', order.id);
    this.logger.log(`order ${order.id}: products ${order.products_ids.join(',')} counted`);
  }
}

@Injectable()
export class WarehousePrinter {
  private readonly logger = new Logger('WarehousePrinter');

  constructor(private readonly effects: DepartmentEffects) {}

  async print(order: OrderPlacedEvent): Promise<void> {
    await this.effects.record('warehouse', order.id);
    this.logger.log(`order ${order.id}: slip for ${order.customer_name}, products ${order.products_ids.join(', ')}`);
  }
}

/**
 * Tells the API a step is done. An event, not an RPC: the report waits in its queue while the API
 * is down. Written to the outbox in the worker's inbox transaction: the effect, the record that
 * the order was handled and the report commit together, and the relay publishes the report after.
 */
@Injectable()
export class ProgressReporter {
  readonly instance = WORKER_INSTANCE;

  constructor(
    private readonly outbox: Outbox,
    private readonly inbox: Inbox,
  ) {}

  async done(step: Step, order: OrderPlacedEvent): Promise<void> {
    await this.outbox.publish(this.inbox.transaction(), StepCompleted, {
      order_id: order.id,
      step,
      worker: this.instance,
      completed_at: new Date().toISOString(),
    });
  }
}

/**
 * Warren's retries (the module's delays, by default 1 s, 5 s, 30 s), then the dead letter goes to
 * `orders.dead-letters` rather than straight to the queue's `.dlq`: that exchange gives the API its
 * copy (contracts.ts, `DEAD_LETTER_EXCHANGE`).
 */
const WORKER_FAILURE = { deadLetterExchange: DEAD_LETTER_EXCHANGE };

// Each worker runs in the inbox (`@Idempotent()`): a copy of an order it has handled (a
// redelivery after a crash, a broker restart, a relay re-publishing) is acked without running,
// and a worker that dies before its transaction commits gets the order again with nothing done.

@Injectable()
export class SalesWorker {
  constructor(
    private readonly sales: SalesSystem,
    private readonly progress: ProgressReporter,
  ) {}

  @Subscribe(OrderPlaced, { queue: WORKER_QUEUES.sales, failure: WORKER_FAILURE })
  @Idempotent()
  async onOrderPlaced(order: OrderPlacedEvent): Promise<void> {
    await this.sales.record(order);
    await this.progress.done('sales', order);
  }
}

@Injectable()
export class MarketingWorker {
  constructor(
    private readonly statistics: MarketingStatistics,
    private readonly progress: ProgressReporter,
  ) {}

  @Subscribe(OrderPlaced, { queue: WORKER_QUEUES.marketing, failure: WORKER_FAILURE })
  @Idempotent()
  async onOrderPlaced(order: OrderPlacedEvent): Promise<void> {
    await this.statistics.add(order);
    await this.progress.done('marketing', order);
  }
}

@Injectable()
export class WarehouseWorker {
  constructor(
    private readonly printer: WarehousePrinter,
    private readonly progress: ProgressReporter,
  ) {}

  @Subscribe(OrderPlaced, { queue: WORKER_QUEUES.warehouse, failure: WORKER_FAILURE })
  @Idempotent()
  async onOrderPlaced(order: OrderPlacedEvent): Promise<void> {
    await this.printer.print(order);
    await this.progress.done('warehouse', order);
  }
}

/** Each worker with the system it feeds: what `orders-worker <step>` boots. */
export const WORKERS: Readonly<Record<Step, Type[]>> = {
  sales: [SalesWorker, SalesSystem],
  marketing: [MarketingWorker, MarketingStatistics],
  warehouse: [WarehouseWorker, WarehousePrinter],
};

function formatCents(cents: number): string {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

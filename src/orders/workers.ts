import { Injectable, Logger, type Type } from '@nestjs/common';
import { hostname } from 'node:os';
import { Publisher, Subscribe } from 'nestjs-warren';
import { OrderPlaced, type OrderPlacedEvent, type Step, StepCompleted, WORKER_QUEUES } from './contracts.js';

// The three departments' systems are stand-ins that log what the real ones would be sent. Each
// is a provider of its own, so a deployment swaps in the real client (SAP, the statistics tool,
// the printer's spooler) without touching the worker, and a test can watch what reached it.

@Injectable()
export class SalesSystem {
  private readonly logger = new Logger('SalesSystem');

  async record(order: OrderPlacedEvent): Promise<void> {
    this.logger.log(`order ${order.id}: ${order.products_ids.length} item(s), ${formatCents(order.total_cents)}`);
  }
}

@Injectable()
export class MarketingStatistics {
  private readonly logger = new Logger('MarketingStatistics');

  async add(order: OrderPlacedEvent): Promise<void> {
    this.logger.log(`order ${order.id}: products ${order.products_ids.join(',')} counted`);
  }
}

@Injectable()
export class WarehousePrinter {
  private readonly logger = new Logger('WarehousePrinter');

  async print(order: OrderPlacedEvent): Promise<void> {
    this.logger.log(`order ${order.id}: slip for ${order.customer_name}, products ${order.products_ids.join(', ')}`);
  }
}

/** Tells the API a step is done. An event, not an RPC: the report waits in its queue while the API is down. */
@Injectable()
export class ProgressReporter {
  /** `host:pid`: which of several competing instances of a worker did the step. */
  readonly instance = `${hostname()}:${process.pid}`;

  constructor(private readonly publisher: Publisher) {}

  done(step: Step, order: OrderPlacedEvent): Promise<void> {
    return this.publisher.publish(StepCompleted, {
      order_id: order.id,
      step,
      worker: this.instance,
      completed_at: new Date().toISOString(),
    });
  }
}

// Each worker acks the order only after its report is confirmed by the broker, so a worker that
// dies in between gets the order again (at least once; the API ignores a repeated report).

@Injectable()
export class SalesWorker {
  constructor(
    private readonly sales: SalesSystem,
    private readonly progress: ProgressReporter,
  ) {}

  @Subscribe(OrderPlaced, { queue: WORKER_QUEUES.sales })
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

  @Subscribe(OrderPlaced, { queue: WORKER_QUEUES.marketing })
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

  @Subscribe(OrderPlaced, { queue: WORKER_QUEUES.warehouse })
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

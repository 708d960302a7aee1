import { type DynamicModule, Injectable, Module, type OnModuleInit, type Provider, type Type } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { WarrenModule, type WarrenModuleOptions } from 'nestjs-warren';
import { Outbox, OutboxModule, type OutboxRelayOptions } from 'nestjs-warren/outbox';
import {
  DEAD_LETTER_EXCHANGE,
  DEAD_LETTER_QUEUES,
  FAILURES_QUEUE,
  ORDERS_EXCHANGE,
  OrderPlaced,
  STEPS,
  type Step,
  WORKER_QUEUES,
} from './contracts.js';
import { OrdersDatabase } from './database.js';
import { HealthController } from './health.controller.js';
import { OrderStore } from './order-store.js';
import { OrdersController } from './orders.controller.js';
import { OrdersService } from './orders.service.js';
import { Catalogue, StockService } from './stock.service.js';
import { DepartmentEffects, ProgressReporter, WORKERS } from './workers.js';

/** Which parts of the service a process runs; `npm start` runs them all. */
export interface OrdersParts {
  /** The HTTP API and its progress listener. */
  api?: boolean;
  /** The price and stock check the API calls over RPC. */
  stock?: boolean;
  workers?: readonly Step[];
}

export interface OrdersModuleOptions extends OrdersParts {
  url: string;
  /** Shown in the broker's management UI. */
  connectionName?: string;
  /** Other Warren settings, e.g. a connect timeout for tests. */
  warren?: Partial<WarrenModuleOptions>;
  /** The orders, the inboxes and the outbox; needed by the API and the workers (the caller opens and closes it). */
  database?: OrdersDatabase;
  /** The outbox relay's knobs (docs/outbox.md), e.g. a test's `hold`. */
  relay?: OutboxRelayOptions;
}

/**
 * Creates the service's tables and the outbox's at boot, before any consumer starts (they start
 * once the app has booted), unless they are all there already (`OrdersDatabase.ready()`).
 */
@Injectable()
class OrdersSchema implements OnModuleInit {
  constructor(
    private readonly db: OrdersDatabase,
    private readonly outbox: Outbox,
  ) {}

  async onModuleInit(): Promise<void> {
    if (await this.db.ready()) return;
    await this.outbox.migrate();
    await this.db.migrate();
  }
}

/**
 * The API declares the workers' queues and bindings itself: an order placed before a worker of
 * some kind has ever started then waits in that worker's queue instead of being dropped by an
 * exchange that had nowhere to route it.
 */
const API_TOPOLOGY = {
  exchanges: [{ name: ORDERS_EXCHANGE, type: 'topic' as const }],
  queues: Object.values(WORKER_QUEUES).map((name) => ({ name })),
  bindings: Object.values(WORKER_QUEUES).map((queue) => ({
    exchange: OrderPlaced.exchange,
    queue,
    routingKey: OrderPlaced.routingKey,
  })),
};

/**
 * Where the workers' dead letters go, declared by the API and by every worker: a worker must find
 * the exchange and both queues there when it dead-letters an order, whether or not the API has ever
 * run (a dead letter the exchange could route nowhere would be lost).
 */
const DEAD_LETTER_TOPOLOGY = {
  exchanges: [{ name: DEAD_LETTER_EXCHANGE, type: 'topic' as const }],
  queues: [...Object.values(DEAD_LETTER_QUEUES), FAILURES_QUEUE].map((name) => ({ name })),
  bindings: [
    ...STEPS.map((step) => ({
      exchange: DEAD_LETTER_EXCHANGE,
      queue: DEAD_LETTER_QUEUES[step],
      routingKey: WORKER_QUEUES[step],
    })),
    { exchange: DEAD_LETTER_EXCHANGE, queue: FAILURES_QUEUE, routingKey: '#' },
  ],
};

function topologyOf(options: OrdersParts): WarrenModuleOptions['topology'] {
  const workers = (options.workers?.length ?? 0) > 0;
  if (!options.api && !workers) return undefined;
  if (!options.api) return DEAD_LETTER_TOPOLOGY;
  return {
    exchanges: [...API_TOPOLOGY.exchanges, ...DEAD_LETTER_TOPOLOGY.exchanges],
    queues: [...API_TOPOLOGY.queues, ...DEAD_LETTER_TOPOLOGY.queues],
    bindings: [...API_TOPOLOGY.bindings, ...DEAD_LETTER_TOPOLOGY.bindings],
  };
}

@Module({})
export class OrdersModule {
  static forRoot(options: OrdersModuleOptions): DynamicModule {
    const controllers: Type[] = [];
    const providers: Provider[] = [];
    const imports: DynamicModule[] = [
      WarrenModule.forRoot({
        url: options.url,
        connectionName: options.connectionName ?? 'orders',
        topology: topologyOf(options),
        ...options.warren,
      }),
    ];
    if (options.api) {
      controllers.push(OrdersController, HealthController);
      providers.push(OrdersService, OrderStore);
    }
    if (options.stock) providers.push(StockService, Catalogue);
    const workers = [...new Set(options.workers ?? [])];
    if (workers.length > 0) {
      providers.push(ProgressReporter, DepartmentEffects, ...workers.flatMap((step) => WORKERS[step]));
    }
    if (options.api || workers.length > 0) {
      const { database } = options;
      if (!database) throw new Error('OrdersModule: the API and the workers need a database (options.database)');
      providers.push({ provide: OrdersDatabase, useValue: database }, OrdersSchema);
      imports.push(OutboxModule.forRoot({ database: database.outbox, relay: options.relay }));
    }
    return {
      module: OrdersModule,
      imports: [
        ...imports,
        // A probe polled every few seconds would log an ERROR each time readiness is down; Warren
        // logs the cause (a lost connection, each failed attempt) once as it happens.
        ...(options.api ? [TerminusModule.forRoot({ logger: false })] : []),
      ],
      controllers,
      providers,
    };
  }
}

/** `API, stock service, workers sales, marketing`: what a process runs, for its log. */
export function describeParts(parts: OrdersParts): string {
  const names: string[] = [];
  if (parts.api) names.push('API');
  if (parts.stock) names.push('stock service');
  if (parts.workers?.length) names.push(`worker${parts.workers.length > 1 ? 's' : ''} ${parts.workers.join(', ')}`);
  return names.join(', ');
}

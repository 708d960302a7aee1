import { defineEvent, defineRpc } from 'nestjs-warren';
import { z } from 'zod';

// The messages of the order service, shared by the API, the workers and the stock service: a
// change of shape here is a compile error on both sides of each message.

/** The three departments that must hear of every order. */
export const STEPS = ['sales', 'marketing', 'warehouse'] as const;
export type Step = (typeof STEPS)[number];

/** Topic exchange carrying every order event. */
export const ORDERS_EXCHANGE = 'orders';

/**
 * One durable named queue per worker kind, each bound to `order.placed`: every kind gets every
 * order, and the instances of one kind share its queue (competing consumers).
 */
export const WORKER_QUEUES: Readonly<Record<Step, string>> = {
  sales: 'orders.sales',
  marketing: 'orders.marketing',
  warehouse: 'orders.warehouse',
};

/** Where the workers' progress reports wait for the API. */
export const PROGRESS_QUEUE = 'orders.progress';

/**
 * Where the workers' dead letters go (their `failure.deadLetterExchange`), with the worker's queue
 * as routing key: a topic exchange that routes each to its queue's dead-letter queue, which keeps
 * it for `warren dlq redrive`, and a copy of every one to the API's failures queue, where the API
 * records the failed step. The broker makes both copies, so neither side can miss one.
 */
export const DEAD_LETTER_EXCHANGE = 'orders.dead-letters';

/** The dead-letter queue of each worker queue: `orders.sales.dlq`, .... */
export const DEAD_LETTER_QUEUES: Readonly<Record<Step, string>> = {
  sales: `${WORKER_QUEUES.sales}.dlq`,
  marketing: `${WORKER_QUEUES.marketing}.dlq`,
  warehouse: `${WORKER_QUEUES.warehouse}.dlq`,
};

/** The API's copy of every worker's dead letter: each is recorded as its order's failed step. */
export const FAILURES_QUEUE = 'orders.failures';

export interface OrderPlacedEvent {
  id: string;
  customer_name: string;
  products_ids: number[];
  total_cents: number;
  /** ISO 8601. */
  placed_at: string;
}

const productIds = z.array(z.number().int().positive());

// Each message's schema is checked by the sender and again by the receiver, and is the payload
// schema of the service's AsyncAPI document (/asyncapi).
const OrderPlacedSchema = z.object({
  id: z.string().min(1),
  customer_name: z.string().min(1),
  products_ids: productIds.min(1),
  total_cents: z.number().int().nonnegative(),
  placed_at: z.iso.datetime(),
}) satisfies z.ZodType<OrderPlacedEvent>;

export const OrderPlaced = defineEvent<OrderPlacedEvent>(ORDERS_EXCHANGE, 'order.placed', {
  schema: OrderPlacedSchema,
});

export interface StepCompletedEvent {
  order_id: string;
  step: Step;
  /** `host:pid` of the worker instance that did it: shows which of several competing instances took the order. */
  worker: string;
  completed_at: string;
}

const StepCompletedSchema = z.object({
  order_id: z.string().min(1),
  step: z.enum(STEPS),
  worker: z.string(),
  completed_at: z.iso.datetime(),
}) satisfies z.ZodType<StepCompletedEvent>;

export const StepCompleted = defineEvent<StepCompletedEvent>(ORDERS_EXCHANGE, 'order.step-completed', {
  schema: StepCompletedSchema,
});

export interface StockCheckRequest {
  products_ids: number[];
}

export interface StockCheckReply {
  /** Ids the catalogue does not have, in request order, without repeats. */
  unknown_ids: number[];
  /** Known ids that are out of stock, in request order, without repeats. */
  out_of_stock_ids: number[];
  /** Price of the known products, each counted as often as it is ordered. */
  total_cents: number;
}

const StockCheckRequestSchema = z.object({ products_ids: productIds }) satisfies z.ZodType<StockCheckRequest>;

export const StockCheck = defineRpc<StockCheckRequest, StockCheckReply>('orders.stock-check', {
  schema: StockCheckRequestSchema,
});

/** Every exchange and queue the service declares, for tests and tear-downs that remove them. */
export const ORDERS_TOPOLOGY = {
  exchanges: [ORDERS_EXCHANGE, DEAD_LETTER_EXCHANGE],
  queues: [
    ...Object.values(WORKER_QUEUES),
    ...Object.values(DEAD_LETTER_QUEUES),
    PROGRESS_QUEUE,
    FAILURES_QUEUE,
    StockCheck.queue,
  ],
};

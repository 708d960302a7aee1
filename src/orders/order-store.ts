import { Injectable } from '@nestjs/common';
import type { SqlQueryable } from 'nestjs-warren/outbox';
import { type OrderPlacedEvent, type Step, STEPS } from './contracts.js';
import { OrdersDatabase } from './database.js';

export type StepState =
  | { status: 'pending' }
  | {
      status: 'done';
      worker: string;
      completed_at: string;
    }
  | ({ status: 'failed' } & StepFailure);

/** Why a step's message was dead-lettered, from Warren's headers on the dead letter. */
export interface StepFailure {
  /** `attempts-exhausted`, `handler-error`, `poison`, ... (`x-warren-failure-reason`). */
  reason: string;
  /** `Error: the sales system is down`: the last error's name and message. */
  error: string;
  attempts: number;
  failed_at: string;
}

export interface Order extends OrderPlacedEvent {
  /**
   * `received` until every step is done, then `completed`; `failed` while a step's message sits
   * dead-lettered (its step says why), until it is redriven and handled.
   */
  status: 'received' | 'completed' | 'failed';
  completed_at?: string;
  steps: Record<Step, StepState>;
}

/** What `completeStep` did, so the caller can log the cases that need a look. */
export type StepOutcome = 'recorded' | 'completed' | 'duplicate' | 'unknown-order' | 'unknown-step';

interface OrderRow {
  id: string;
  customer_name: string;
  products_ids: number[];
  total_cents: number;
  placed_at: Date | string;
}

interface FailureRow {
  step: Step;
  reason: string;
  error: string;
  attempts: number;
  failed_at: Date | string;
}

interface StepRow {
  step: Step;
  worker: string;
  completed_at: Date | string;
}

/**
 * The orders, in the service's database (tables in `database.ts`): every API instance on that
 * database sees every order, and a restart forgets none. Writes take the caller's transaction, so
 * an order commits with its outbox row and a step with its inbox record.
 */
@Injectable()
export class OrderStore {
  constructor(private readonly db: OrdersDatabase) {}

  async add(tx: SqlQueryable, placed: OrderPlacedEvent): Promise<void> {
    await tx.query(
      'INSERT INTO orders (id, customer_name, products_ids, total_cents, placed_at) VALUES ($1, $2, $3, $4, $5)',
      [placed.id, placed.customer_name, placed.products_ids, placed.total_cents, placed.placed_at],
    );
  }

  async get(id: string): Promise<Order | undefined> {
    // Not a uuid: no such order (and no SQL error for the client's typo).
    if (!isUuid(id)) return undefined;
    const [row] = await this.db.query<OrderRow>('SELECT * FROM orders WHERE id = $1', [id]);
    if (!row) return undefined;
    // Done steps and recorded failures in one round trip: a GET costs what it did before failures.
    const rows = await this.db.query<(StepRow & { failed: false }) | (FailureRow & { failed: true })>(
      `SELECT false AS failed, step, worker, completed_at, NULL AS reason, NULL AS error, NULL AS attempts, NULL AS failed_at
         FROM order_steps WHERE order_id = $1
       UNION ALL
       SELECT true, step, NULL, NULL, reason, error, attempts, failed_at FROM order_failures WHERE order_id = $1`,
      [id],
    );
    const steps = rows.filter((r): r is StepRow & { failed: false } => !r.failed);
    const done = new Map(steps.map((s) => [s.step, s]));
    const failed = new Map(rows.filter((r): r is FailureRow & { failed: true } => r.failed).map((f) => [f.step, f]));
    const stepStates = Object.fromEntries(
      STEPS.map((step): [Step, StepState] => {
        const s = done.get(step);
        // Done wins over an older failure: the dead letter was redriven and handled.
        if (s) return [step, { status: 'done', worker: s.worker, completed_at: iso(s.completed_at) }];
        const f = failed.get(step);
        if (f) {
          const { reason, error, attempts } = f;
          return [step, { status: 'failed', reason, error, attempts, failed_at: iso(f.failed_at) }];
        }
        return [step, { status: 'pending' }];
      }),
    ) as Record<Step, StepState>;
    const states = Object.values(stepStates).map((st) => st.status);
    const order: Order = {
      id: row.id,
      customer_name: row.customer_name,
      products_ids: row.products_ids,
      total_cents: row.total_cents,
      placed_at: iso(row.placed_at),
      status: steps.length === STEPS.length ? 'completed' : states.includes('failed') ? 'failed' : 'received',
      steps: stepStates,
    };
    // Completed when its last step was.
    if (order.status === 'completed') {
      order.completed_at = iso(new Date(Math.max(...steps.map((st) => new Date(st.completed_at).getTime()))));
    }
    return order;
  }

  /**
   * Marks one worker's step done, in `tx`. Delivery is at least once, so a second report for a
   * done step is expected now and then and changes nothing (the row's key). Whether the order is
   * now complete is for the log only: `get()` derives the status from the steps, so reports of
   * one order recorded at once by several instances need not see each other.
   */
  async completeStep(tx: SqlQueryable, id: string, step: Step, worker: string, at: string): Promise<StepOutcome> {
    if (!(STEPS as readonly string[]).includes(step)) return 'unknown-step';
    const { rows: known } = await tx.query('SELECT 1 FROM orders WHERE id = $1', [id]);
    if (known.length === 0) return 'unknown-order';
    const { rows: inserted } = await tx.query(
      `INSERT INTO order_steps (order_id, step, worker, completed_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING RETURNING 1`,
      [id, step, worker, at],
    );
    if (inserted.length === 0) return 'duplicate';
    const { rows } = await tx.query('SELECT count(*)::int AS n FROM order_steps WHERE order_id = $1', [id]);
    return (rows[0] as { n: number }).n === STEPS.length ? 'completed' : 'recorded';
  }

  /**
   * Records that a step's message was dead-lettered. The latest failure of a step replaces an
   * earlier one (a redriven message that fails again): a dead letter is a copy made by the broker,
   * delivered at least once, and recording one twice changes nothing but its time.
   */
  async failStep(id: string, step: Step, failure: StepFailure): Promise<FailureOutcome> {
    if (!isUuid(id)) return 'unknown-order';
    const rows = await this.db.query(
      `INSERT INTO order_failures (order_id, step, reason, error, attempts, failed_at)
       SELECT id, $2, $3, $4, $5, $6 FROM orders WHERE id = $1
       ON CONFLICT (order_id, step) DO UPDATE
         SET reason = excluded.reason, error = excluded.error, attempts = excluded.attempts, failed_at = excluded.failed_at
       RETURNING 1`,
      [id, step, failure.reason, failure.error, failure.attempts, failure.failed_at],
    );
    return rows.length === 0 ? 'unknown-order' : 'recorded';
  }
}

/** What `failStep` did. */
export type FailureOutcome = 'recorded' | 'unknown-order';

function isUuid(id: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);
}

function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

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
    };

export interface Order extends OrderPlacedEvent {
  status: 'received' | 'completed';
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
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return undefined;
    const [row] = await this.db.query<OrderRow>('SELECT * FROM orders WHERE id = $1', [id]);
    if (!row) return undefined;
    const steps = await this.db.query<StepRow>(
      'SELECT step, worker, completed_at FROM order_steps WHERE order_id = $1',
      [id],
    );
    const done = new Map(steps.map((s) => [s.step, s]));
    const order: Order = {
      id: row.id,
      customer_name: row.customer_name,
      products_ids: row.products_ids,
      total_cents: row.total_cents,
      placed_at: iso(row.placed_at),
      status: steps.length === STEPS.length ? 'completed' : 'received',
      steps: Object.fromEntries(
        STEPS.map((step) => {
          const s = done.get(step);
          return [
            step,
            s ? { status: 'done', worker: s.worker, completed_at: iso(s.completed_at) } : { status: 'pending' },
          ];
        }),
      ) as Record<Step, StepState>,
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
}

function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

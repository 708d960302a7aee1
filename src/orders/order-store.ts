import { Injectable } from '@nestjs/common';
import { type OrderPlacedEvent, type Step, STEPS } from './contracts.js';

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

/**
 * The orders, in this process's memory: the stand-in for the shop's database. They are gone when
 * the API stops, and a second API instance would not see them; a real deployment puts a database
 * behind this class, and nothing else changes.
 */
@Injectable()
export class OrderStore {
  private readonly orders = new Map<string, Order>();

  add(placed: OrderPlacedEvent): Order {
    const steps = Object.fromEntries(STEPS.map((step) => [step, { status: 'pending' }])) as Record<Step, StepState>;
    const order: Order = { ...placed, status: 'received', steps };
    this.orders.set(order.id, order);
    return order;
  }

  get(id: string): Order | undefined {
    return this.orders.get(id);
  }

  remove(id: string): void {
    this.orders.delete(id);
  }

  get size(): number {
    return this.orders.size;
  }

  /**
   * Marks one worker's step done. Delivery is at least once (a worker that dies before its ack
   * gets the order again), so a second report for a done step is expected now and then and
   * changes nothing.
   */
  completeStep(id: string, step: Step, worker: string, at: string): StepOutcome {
    const order = this.orders.get(id);
    if (!order) return 'unknown-order';
    if (!(STEPS as readonly string[]).includes(step)) return 'unknown-step';
    if (order.steps[step].status === 'done') return 'duplicate';
    order.steps[step] = { status: 'done', worker, completed_at: at };
    if (STEPS.every((s) => order.steps[s].status === 'done')) {
      order.status = 'completed';
      order.completed_at = at;
      return 'completed';
    }
    return 'recorded';
  }
}

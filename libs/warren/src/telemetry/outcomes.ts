/**
 * What became of a delivery: the consumer's span and metrics carry it. One frozen object per
 * outcome (and per dead-letter reason), so settling a delivery allocates nothing for it.
 */
export interface Settlement {
  readonly outcome: 'acked' | 'manual' | 'retried' | 'dead-lettered' | 'requeued' | 'dropped' | 'rejected';
  /** Why it was dead-lettered: `handler-error`, `attempts-exhausted`, `poison`, `no-handler`. */
  readonly reason?: string;
}

const settled = (outcome: Settlement['outcome'], reason?: string): Settlement => Object.freeze({ outcome, reason });

export const ACKED = settled('acked');
/** A manual-mode handler settles its delivery itself. */
export const MANUAL = settled('manual');
export const RETRIED = settled('retried');
export const REQUEUED = settled('requeued');
export const DROPPED = settled('dropped');
/** Rejected without requeue: to the queue's own dead-letter exchange, if the broker has one. */
export const REJECTED = settled('rejected');

const deadLettered = new Map<string, Settlement>();

/** The dead-lettered outcome with its reason (a handful of fixed words: kept, not rebuilt). */
export function deadLetteredFor(reason: string): Settlement {
  let found = deadLettered.get(reason);
  if (!found) deadLettered.set(reason, (found = settled('dead-lettered', reason)));
  return found;
}

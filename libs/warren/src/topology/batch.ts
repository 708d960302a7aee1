import { describeValue } from '../validation/describe-value.js';
import { BATCH_DEFAULTS } from '../warren.defaults.js';
import { MAX_PREFETCH } from './amqp-rules.js';

/** `batch` of `@Subscribe`/`@Consume`: the handler receives up to `size` messages at once. */
export interface BatchOptions {
  /** The most messages one call of the handler receives. */
  size: number;
  /** How long a batch waits for more messages after its first one arrived; then it goes as it is. */
  timeoutMs?: number;
}

/** A consumer's batching, as its topology holds it. */
export interface BatchSettings {
  size: number;
  timeoutMs: number;
}

/** The longest a batch may wait for more messages: a minute (a longer wait only holds messages unacked). */
export const MAX_BATCH_TIMEOUT_MS = 60_000;

/** Why `value` cannot be a handler's `batch` option, or null when it can. */
export function batchProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return `batch must be an object like { size: 100, timeoutMs: 50 }, got ${describeValue(value)}`;
  }
  const { size, timeoutMs, ...rest } = value as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) return `batch has no option ${unknown.map((k) => `"${k}"`).join(', ')} (size, timeoutMs)`;
  // A batch is held unacked until it is handled, so it can never be larger than a prefetch can be.
  if (!Number.isInteger(size) || (size as number) < 1 || (size as number) > MAX_PREFETCH) {
    return `batch.size must be a whole number from 1 to ${MAX_PREFETCH}, got ${describeValue(size)}`;
  }
  if (
    timeoutMs !== undefined &&
    (!Number.isInteger(timeoutMs) || (timeoutMs as number) < 0 || (timeoutMs as number) > MAX_BATCH_TIMEOUT_MS)
  ) {
    return `batch.timeoutMs must be a whole number of milliseconds from 0 to ${MAX_BATCH_TIMEOUT_MS}, got ${describeValue(timeoutMs)}`;
  }
  return null;
}

export function batchSettings(options: BatchOptions): BatchSettings {
  return { size: options.size, timeoutMs: options.timeoutMs ?? BATCH_DEFAULTS.timeoutMs };
}

/**
 * A prefetch set for a batch consumer: a batch fills only from deliveries the broker lets the
 * consumer hold unacked, so one below the batch size (but for 0, no limit) is a mistake: the batch
 * could never fill and would always wait its timeout.
 */
export function batchPrefetchProblem(own: number | undefined, batch: BatchSettings): string | null {
  if (own === undefined || own === 0 || own >= batch.size) return null;
  return (
    `prefetch ${own} is below batch.size ${batch.size}: the broker would never send a full batch, so every ` +
    `batch would wait its timeout; raise the prefetch to at least ${batch.size}, or leave it unset (it is then twice the batch size)`
  );
}

/**
 * The prefetch of a batch consumer that sets none: twice the batch size (or the module's, if
 * higher), so that the next batch fills while the handler works on this one; with exactly the
 * batch size the broker would send nothing more until the batch is acked.
 */
export function batchPrefetch(own: number | undefined, moduleDefault: number, batch: BatchSettings): number {
  if (own !== undefined) return own;
  return moduleDefault === 0 ? 0 : Math.min(MAX_PREFETCH, Math.max(moduleDefault, 2 * batch.size));
}

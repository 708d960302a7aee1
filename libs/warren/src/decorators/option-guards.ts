import { prefetchProblem } from '../topology/amqp-rules.js';
import { type BatchSettings, batchProblem, batchSettings, type BatchOptions } from '../topology/batch.js';
import { concurrencyProblem } from '../topology/concurrency.js';
import { describeValue } from '../validation/describe-value.js';
import { WarrenDecoratorError } from '../warren.errors.js';
import type { ConnectionOption } from './handler-metadata.js';

/**
 * Guards for handler arguments: a wrong one fails when the class is defined (or when a runtime
 * subscription is made), with `who` — e.g. `@Consume() on Worker.onTask` — naming the culprit.
 */
export function requireName(who: string, what: string, value: unknown, allowEmpty = false): string {
  if (typeof value !== 'string' || (!allowEmpty && value === '')) {
    throw new WarrenDecoratorError(`${who}: ${what} must be a non-empty string, got ${describeValue(value)}`);
  }
  return value;
}

export function requireOptions(who: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WarrenDecoratorError(`${who}: options must be an object, got ${describeValue(value)}`);
  }
  return value as Record<string, unknown>;
}

export function requireConnection(who: string, options: unknown): string | undefined {
  const value = (options as ConnectionOption | undefined)?.connection;
  return value === undefined ? undefined : requireName(who, 'options.connection', value);
}

export function requirePrefetch(who: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const problem = prefetchProblem(value);
  if (problem) throw new WarrenDecoratorError(`${who}: ${problem}`);
  return value as number;
}

export function requireConcurrency(who: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const problem = concurrencyProblem(value);
  if (problem) throw new WarrenDecoratorError(`${who}: ${problem}`);
  return value as number;
}

export function requireBatch(who: string, value: unknown): BatchSettings | undefined {
  if (value === undefined) return undefined;
  const problem = batchProblem(value);
  if (problem) throw new WarrenDecoratorError(`${who}: ${problem}`);
  return batchSettings(value as BatchOptions);
}

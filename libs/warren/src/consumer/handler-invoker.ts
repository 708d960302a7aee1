import { isObservable, lastValueFrom } from 'rxjs';
import type { WarrenContext } from './warren-context.js';

export type Handler = (payload: any, context: WarrenContext) => unknown;

/** The handler's result, whatever its form: a plain value, a Promise, or an Observable's last value. */
export function invokeHandler(handler: Handler, payload: unknown, context: WarrenContext): Promise<unknown> {
  try {
    const result = callHandler(handler, payload, context);
    return Promise.resolve(result);
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

/**
 * The handler's result as `invokeHandler` gives it, but a plain value returned synchronously as it
 * is, with no promise: the consumer then acks (or replies) in the same tick, without the two or
 * three promise jobs an `await` costs a delivery. Throws what the handler throws synchronously;
 * a Promise (or thenable) for anything asynchronous, an Observable's last value included.
 */
export function callHandler(handler: Handler, payload: unknown, context: WarrenContext): unknown {
  const result = handler(payload, context);
  if (isObservable(result)) return lastValueFrom(result, { defaultValue: undefined });
  if (!isThenable(result)) return result;
  return Promise.resolve(result).then(lastValueOf);
}

const lastValueOf = (value: unknown): unknown =>
  isObservable(value) ? lastValueFrom(value, { defaultValue: undefined }) : value;

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

import { isObservable, lastValueFrom } from 'rxjs';
import type { WarrenContext } from './warren-context.js';

export type Handler = (payload: any, context: WarrenContext) => unknown;

/** The handler's result, whatever its form: a plain value, a Promise, or an Observable's last value. */
export async function invokeHandler(handler: Handler, payload: unknown, context: WarrenContext): Promise<unknown> {
  const result = await handler(payload, context);
  return isObservable(result) ? lastValueFrom(result, { defaultValue: undefined }) : result;
}

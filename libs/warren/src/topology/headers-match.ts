import { isDeepStrictEqual } from 'node:util';

/**
 * RabbitMQ's headers exchange: `x-match` `all` (default) or `any`, and their `-with-x` forms that
 * also compare `x-` headers; a binding value of void (null) only asks for the header to be present.
 * A value matches when it has the same type and value. Used by the in-memory broker to route and
 * by a service queue's dispatcher to choose a handler; the real routing is always the broker's.
 */
export function headersMatch(args: Record<string, unknown>, headers: Record<string, unknown>): boolean {
  const mode = typeof args['x-match'] === 'string' ? args['x-match'] : 'all';
  const withX = mode.endsWith('-with-x');
  const any = mode.startsWith('any');
  for (const [key, expected] of Object.entries(args)) {
    if (key === 'x-match' || (!withX && key.startsWith('x-'))) continue;
    const ok = Object.hasOwn(headers, key) && (expected === null || isDeepStrictEqual(headers[key], expected));
    if (any && ok) return true;
    if (!any && !ok) return false;
  }
  // With nothing to compare, `all` matches every message and `any` none.
  return !any;
}

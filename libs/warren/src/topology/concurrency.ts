import { describeValue } from '../validation/describe-value.js';

/** Why `value` cannot be a consumer's concurrency, or null when it can. */
export function concurrencyProblem(value: unknown): string | null {
  if (Number.isInteger(value) && (value as number) >= 1) return null;
  return `concurrency must be a whole number of at least 1, got ${describeValue(value)}`;
}

/**
 * How many handler invocations a consumer runs at once: its own setting, the module's, or else as
 * many as its prefetch lets it hold (0: no limiter). A limit at or above the prefetch never binds,
 * so it is dropped (0), and such a consumer takes the path without a limiter. The prefetch is the
 * checked one, never 0 (`prefetchProblem` refuses it at boot).
 */
export function effectiveConcurrency(
  own: number | undefined,
  moduleDefault: number | undefined,
  prefetch: number,
): number {
  const limit = own ?? moduleDefault;
  if (limit === undefined) return 0;
  return limit >= prefetch ? 0 : limit;
}

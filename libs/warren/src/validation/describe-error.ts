/**
 * What a thrown value says about itself, for logs, dead-letter headers and error replies. Anything
 * can be thrown — an object whose `message` getter throws, a Proxy whose every trap throws, an
 * object whose `toString` does — and describing it must never throw in turn: a failure path that
 * fails leaves its message unsettled and its caller waiting.
 */
export function errorName(err: unknown): string {
  return attempt(() => {
    const name = (err as { name?: unknown } | null)?.name;
    return typeof name === 'string' && name ? name : 'Error';
  }, 'Error');
}

/** The thrown value's message: an Error's (or an error-like object's) `message`, else its text. */
export function errorMessage(err: unknown): string {
  return attempt(() => {
    if (err === null || (typeof err !== 'object' && typeof err !== 'function')) return String(err);
    const message = (err as { message?: unknown }).message;
    if (typeof message === 'string') return message;
    if (err instanceof Error) return '';
    return JSON.stringify(err) ?? String(err);
  }, UNDESCRIBABLE);
}

/** `Name: message`, or the value's text when it is no error. */
export function describeError(err: unknown): string {
  return attempt(
    () => (err instanceof Error ? `${errorName(err)}: ${errorMessage(err)}` : errorMessage(err)),
    UNDESCRIBABLE,
  );
}

/** A named own field of the thrown value (`code`, `stack`), or undefined when reading it fails. */
export function errorField(err: unknown, field: string): unknown {
  return attempt(
    () => (err !== null && typeof err === 'object' ? (err as Record<string, unknown>)[field] : undefined),
    undefined,
  );
}

const UNDESCRIBABLE = 'an error that cannot be described (reading it threw)';

function attempt<T>(describe: () => T, fallback: T): T {
  try {
    return describe();
  } catch {
    return fallback;
  }
}

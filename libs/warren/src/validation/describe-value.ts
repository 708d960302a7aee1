/**
 * A wrong value as an error message shows it: strings quoted, so an empty or padded one is
 * visible; objects and arrays by kind only, since they may be large or hold secrets.
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : String(value);
}

/**
 * JSON with object keys sorted at every depth, so that two declarations that differ only in the
 * order their arguments were written compare equal. A Buffer (a binary AMQP table value) shows
 * its content, in a form no JSON value takes, rather than its byte-indexed keys.
 */
export function stableJson(value: unknown): string {
  if (Buffer.isBuffer(value)) return `Buffer(${JSON.stringify(value.toString('base64'))})`;
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}

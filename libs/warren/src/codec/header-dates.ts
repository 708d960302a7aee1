import { MAX_HEADER_DEPTH } from './amqp-properties-decoder.js';

/**
 * `headers` as a handler reads them: every AMQP timestamp (field type `T`, at any depth, which
 * amqplib and the in-memory broker hand over as `{ '!': 'timestamp', value: seconds }`) as a
 * `Date`, the counterpart of the publisher sending a Date header as a timestamp. A decimal (type
 * `D`) stays amqplib's `{ '!': 'decimal', value: { places, digits } }`: no JavaScript number holds
 * it exactly. The same object when it holds no timestamp, so the usual path copies nothing.
 */
export function decodeHeaderDates(headers: Record<string, unknown>): Record<string, unknown> {
  if (!holdsTimestamp(headers, 0)) return headers;
  return withDates(headers, 0) as Record<string, unknown>;
}

function isTimestamp(value: unknown): value is { '!': 'timestamp'; value: number } {
  const typed = value as { '!'?: unknown; value?: unknown };
  return typed['!'] === 'timestamp' && typeof typed.value === 'number';
}

function holdsTimestamp(value: unknown, depth: number): boolean {
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value) || depth > MAX_HEADER_DEPTH) return false;
  if (isTimestamp(value)) return true;
  for (const key of Object.keys(value))
    if (holdsTimestamp((value as Record<string, unknown>)[key], depth + 1)) return true;
  return false;
}

function withDates(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value) || depth > MAX_HEADER_DEPTH) return value;
  if (isTimestamp(value)) return new Date(value.value * 1000);
  if (Array.isArray(value)) return value.map((v) => withDates(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = withDates((value as Record<string, unknown>)[key], depth + 1);
  return out;
}

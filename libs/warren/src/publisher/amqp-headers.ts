import type { Options } from 'amqplib';
import { MAX_HEADER_DEPTH } from '../codec/amqp-properties-decoder.js';

/**
 * What AMQP 0-9-1 (as amqplib encodes it) can carry in a message's properties and headers.
 * amqplib finds out only while writing the frame, inside amqp-connection-manager's publishing loop,
 * where the error is lost and the publish never settles: Warren checks before anything is queued,
 * for every sender (publish, RPC request, a failed message moved to a retry or dead-letter queue).
 */

/** amqplib encodes all of a message's headers into one 64 KiB buffer (lib/defs.js, SCRATCH). */
export const MAX_HEADERS_BYTES = 65_536;

/** Properties that travel as AMQP short strings: at most 255 bytes of UTF-8. */
const SHORT_STRINGS = [
  'contentType',
  'contentEncoding',
  'correlationId',
  'replyTo',
  'messageId',
  'type',
  'userId',
  'appId',
] as const;

/**
 * The largest per-message TTL Warren sends: 2^32 - 1 ms (49 days), the range RabbitMQ documents
 * for TTLs. (It refuses negative and fractional values, and much larger ones, by closing the
 * channel, which fails every publish in flight on it.)
 */
export const MAX_EXPIRATION_MS = 4_294_967_295;

/** The lowest integer a signed 64-bit field holds; amqplib sends larger magnitudes as doubles. */
const MIN_INT64 = -(2 ** 63);

/**
 * Where `properties` hold something AMQP cannot carry, as `what: why`, or null. Checks every
 * property (short strings, priority, expiration, timestamp) and the headers (see `headersProblem`).
 */
export function propertiesProblem(properties: Options.Publish): string | null {
  for (const name of SHORT_STRINGS) {
    const value = properties[name];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') return `${name} must be a string, not ${describeType(value)}`;
    const bytes = Buffer.byteLength(value);
    if (bytes > 255) return `${name} is ${bytes} bytes, over AMQP's limit of 255 for a property`;
  }
  const { priority, expiration, timestamp } = properties;
  if (
    priority !== undefined &&
    priority !== null &&
    !(Number.isInteger(priority) && priority >= 0 && priority <= 255)
  ) {
    return `priority must be an integer from 0 to 255 (RabbitMQ uses 0 to the queue's x-max-priority), not ${String(priority)}`;
  }
  if (expiration !== undefined && expiration !== null) {
    const text = typeof expiration === 'number' ? String(expiration) : expiration;
    if (typeof text !== 'string' || !/^(0|[1-9][0-9]{0,9})$/.test(text) || Number(text) > MAX_EXPIRATION_MS) {
      return `expiration must be a whole number of milliseconds from 0 to ${MAX_EXPIRATION_MS}, not ${typeof expiration === 'string' ? JSON.stringify(expiration) : String(expiration)}`;
    }
  }
  if (
    timestamp !== undefined &&
    timestamp !== null &&
    !(Number.isInteger(timestamp) && (timestamp as number) >= 0 && (timestamp as number) < 2 ** 64)
  ) {
    return `timestamp must be whole seconds since the epoch, not ${String(timestamp)}`;
  }
  return headersProblem(properties.headers);
}

/**
 * Where `headers` hold a value AMQP's field tables cannot carry, as `path: why`, or null: a key
 * over 255 bytes, a value of no AMQP type (functions, symbols, BigInt), a number amqplib cannot
 * encode (NaN, ±Infinity, an integer below -2^63), an object with a `!` key (amqplib reads it as a
 * type annotation), nesting deeper than MAX_HEADER_DEPTH (a cycle included), or a table over
 * amqplib's 64 KiB.
 */
export function headersProblem(headers: unknown, path = 'headers'): string | null {
  if (headers === undefined || headers === null) return null;
  if (typeof headers !== 'object' || Array.isArray(headers) || Buffer.isBuffer(headers) || headers instanceof Date) {
    return `${path} must be an object`;
  }
  const size = { bytes: 4 };
  const problem = tableProblem(headers as Record<string, unknown>, path, 0, size);
  if (problem) return problem;
  if (size.bytes > MAX_HEADERS_BYTES) {
    return `${path} encode to ${size.bytes} bytes, over the ${MAX_HEADERS_BYTES} bytes amqplib can send`;
  }
  return null;
}

/** Checks a table's entries, adding their encoded size to `size`. */
function tableProblem(
  table: Record<string, unknown>,
  path: string,
  depth: number,
  size: { bytes: number },
): string | null {
  for (const key in table) {
    const value = table[key];
    // amqplib leaves undefined values out.
    if (value === undefined) continue;
    const keyBytes = Buffer.byteLength(key);
    if (keyBytes > 255) return `${path} has a key of ${keyBytes} bytes, over AMQP's limit of 255`;
    size.bytes += 1 + keyBytes;
    const problem = valueProblem(value, `${path}.${key}`, depth, size);
    if (problem) return problem;
    // Past the limit there is no point in walking on (a huge table would be walked for nothing).
    if (size.bytes > MAX_HEADERS_BYTES) return null;
  }
  return null;
}

function valueProblem(value: unknown, path: string, depth: number, size: { bytes: number }): string | null {
  switch (typeof value) {
    case 'string':
      size.bytes += 5 + Buffer.byteLength(value);
      return null;
    case 'boolean':
      size.bytes += 2;
      return null;
    case 'number':
      if (!Number.isFinite(value)) return `${path} is ${value}, which AMQP cannot encode`;
      if (Number.isInteger(value) && value < MIN_INT64) {
        return `${path} is ${value}, below the 64-bit integers AMQP carries`;
      }
      size.bytes += numberBytes(value);
      return null;
    case 'object': {
      if (value === null) {
        size.bytes += 1;
        return null;
      }
      if (Buffer.isBuffer(value)) {
        size.bytes += 5 + value.length;
        return null;
      }
      // Sent as an AMQP timestamp (see `encodeHeaderDates`).
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime()) || value.getTime() < 0) return `${path} is a Date before 1970 or invalid`;
        size.bytes += 9;
        return null;
      }
      // amqplib's type annotation, `{ '!': 'timestamp', value }`: what it decodes timestamps and
      // decimals to, so a received message's headers can be sent on as they came.
      if (Object.hasOwn(value, '!')) {
        const problem = typedValueProblem(value as { '!': unknown; value?: unknown }, path);
        if (!problem) size.bytes += 9;
        return problem;
      }
      if (depth + 1 > MAX_HEADER_DEPTH) {
        return `${path} is nested deeper than ${MAX_HEADER_DEPTH} levels of tables and arrays (a cycle?)`;
      }
      size.bytes += 5;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          // A table leaves an undefined value out; an array has no way to.
          if (value[i] === undefined) return `${path}[${i}] is undefined, which an AMQP array cannot carry`;
          const problem = valueProblem(value[i], `${path}[${i}]`, depth + 1, size);
          if (problem) return problem;
        }
        return null;
      }
      return tableProblem(value as Record<string, unknown>, path, depth + 1, size);
    }
    case 'undefined':
      return null;
    default:
      return `${path} is a ${typeof value}, which AMQP headers cannot carry`;
  }
}

/**
 * `headers` with every Date (at any depth) as an AMQP timestamp: whole seconds, which amqplib
 * sends as type `T` when given `{ '!': 'timestamp', value }`. Without this a Date would go as an
 * empty table, `{}`. The same object when it holds no Date, so the usual path copies nothing.
 */
export function encodeHeaderDates<T>(headers: T): T {
  if (!holdsDate(headers, 0)) return headers;
  return withTimestamps(headers, 0) as T;
}

function holdsDate(value: unknown, depth: number): boolean {
  if (value instanceof Date) return true;
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value) || depth > MAX_HEADER_DEPTH) return false;
  for (const key in value) if (holdsDate((value as Record<string, unknown>)[key], depth + 1)) return true;
  return false;
}

function withTimestamps(value: unknown, depth: number): unknown {
  if (value instanceof Date) return { '!': 'timestamp', value: Math.floor(value.getTime() / 1000) };
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value) || depth > MAX_HEADER_DEPTH) return value;
  if (Array.isArray(value)) return value.map((v) => withTimestamps(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const key in value) out[key] = withTimestamps((value as Record<string, unknown>)[key], depth + 1);
  return out;
}

/** Integer ranges of amqplib's annotated types. */
const TYPED_INTEGERS: Record<string, [number, number]> = {
  int8: [-128, 127],
  byte: [-128, 127],
  uint8: [0, 255],
  unsignedbyte: [0, 255],
  int16: [-0x8000, 0x7fff],
  short: [-0x8000, 0x7fff],
  uint16: [0, 0xffff],
  unsignedshort: [0, 0xffff],
  int32: [-0x80000000, 0x7fffffff],
  int: [-0x80000000, 0x7fffffff],
  uint32: [0, 0xffffffff],
  unsignedint: [0, 0xffffffff],
  int64: [MIN_INT64, Number.MAX_SAFE_INTEGER],
  long: [MIN_INT64, Number.MAX_SAFE_INTEGER],
  timestamp: [0, Number.MAX_SAFE_INTEGER],
};

function typedValueProblem(typed: { '!': unknown; value?: unknown }, path: string): string | null {
  const type = typed['!'];
  const { value } = typed;
  const range = typeof type === 'string' ? TYPED_INTEGERS[type] : undefined;
  if (range) {
    return Number.isInteger(value) && (value as number) >= range[0] && (value as number) <= range[1]
      ? null
      : `${path} is a ${type} whose value is not an integer from ${range[0]} to ${range[1]}`;
  }
  if (type === 'float' || type === 'double' || type === 'float64') {
    return typeof value === 'number' && Number.isFinite(value) ? null : `${path} is a ${type} with no finite value`;
  }
  if (type === 'decimal') {
    const d = value as { places?: unknown; digits?: unknown } | null;
    return d &&
      Number.isInteger(d.places) &&
      (d.places as number) >= 0 &&
      (d.places as number) <= 255 &&
      Number.isInteger(d.digits) &&
      (d.digits as number) >= 0 &&
      (d.digits as number) <= 0xffffffff
      ? null
      : `${path} is a decimal whose value is not { places: 0..255, digits: 0..2^32-1 }`;
  }
  return `${path} has a "!" key, which amqplib reads as a type annotation, and ${JSON.stringify(String(type)).slice(0, 40)} is no type it knows`;
}

/** The tag and value amqplib encodes a number as (lib/codec.js, `encodeFieldValue`). */
function numberBytes(n: number): number {
  if (n >= 2 ** 63 || (Math.abs(n) < 2 ** 50 && Math.floor(n) !== n)) return 9;
  if (n < 128 && n >= -128) return 2;
  if (n >= -0x8000 && n < 0x8000) return 3;
  if (n >= -0x80000000 && n < 0x80000000) return 5;
  return 9;
}

function describeType(value: unknown): string {
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

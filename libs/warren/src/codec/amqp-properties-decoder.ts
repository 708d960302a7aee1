/**
 * Deepest nesting of tables and arrays Warren carries in headers, both ways: an outgoing message
 * with deeper headers is refused, and an incoming one whose headers amqplib could not decode has
 * its deeper values dropped. No AMQP peer needs more; a sender that nests thousands deep is
 * hostile or broken.
 */
export const MAX_HEADER_DEPTH = 64;

/** basic.properties, decoded as amqplib names and shapes them. */
export type DecodedProperties = Record<string, unknown>;

/**
 * Decodes a content header's basic.properties (flags, then each present field) without ever
 * throwing and with bounded recursion: for the frames amqplib's own decoder fails on (a header
 * table nested deeper than the stack, an unknown type tag, a length past the end). Values are
 * shaped as amqplib shapes them. A header that cannot be decoded is left out and `problem` says
 * which and why; the other headers and properties are kept.
 */
export function decodePropertiesSafely(buf: Buffer): { properties: DecodedProperties; problem?: string } {
  const properties: DecodedProperties = {};
  let problem: string | undefined;
  let offset = 2;
  try {
    const flags = buf.readUInt16BE(0);
    const shortstr = (): string => {
      const len = byteAt(buf, offset);
      const end = offset + 1 + len;
      if (end > buf.length) throw new RangeError('a property is truncated');
      const text = buf.toString('utf8', offset + 1, end);
      offset = end;
      return text;
    };
    const octet = (): number => byteAt(buf, offset++);
    for (const [bit, name, read] of [
      [0x8000, 'contentType', shortstr],
      [0x4000, 'contentEncoding', shortstr],
      [0x2000, 'headers', undefined],
      [0x1000, 'deliveryMode', octet],
      [0x0800, 'priority', octet],
      [0x0400, 'correlationId', shortstr],
      [0x0200, 'replyTo', shortstr],
      [0x0100, 'expiration', shortstr],
      [0x0080, 'messageId', shortstr],
      [0x0040, 'timestamp', undefined],
      [0x0020, 'type', shortstr],
      [0x0010, 'userId', shortstr],
      [0x0008, 'appId', shortstr],
      [0x0004, 'clusterId', shortstr],
    ] as const) {
      if (!(flags & bit)) continue;
      if (name === 'headers') {
        const len = buf.readUInt32BE(offset);
        const end = offset + 4 + len;
        if (end > buf.length) throw new RangeError('the header table runs past the end of the frame');
        const table = decodeHeaderTable(buf.subarray(offset + 4, end));
        properties.headers = table.headers;
        problem = table.problem;
        offset = end;
      } else if (name === 'timestamp') {
        properties.timestamp = Number(buf.readBigUInt64BE(offset));
        offset += 8;
      } else {
        properties[name] = read();
      }
    }
  } catch (err) {
    problem ??= `the properties cannot be decoded: ${(err as Error).message}`;
  }
  return { properties, problem };
}

/** Thrown inside the decoder only; becomes the `problem` of the header it was found in. */
class Undecodable extends Error {}

/** The top-level header table: each header on its own, so one bad header costs only itself. */
function decodeHeaderTable(buf: Buffer): { headers: Record<string, unknown>; problem?: string } {
  const headers: Record<string, unknown> = {};
  let problem: string | undefined;
  let offset = 0;
  while (offset < buf.length) {
    const keyEnd = offset + 1 + buf[offset];
    if (keyEnd > buf.length) {
      problem ??= 'the header table is truncated';
      break;
    }
    const key = buf.toString('utf8', offset + 1, keyEnd);
    const end = valueEnd(buf, keyEnd);
    try {
      if (end === undefined) throw new Undecodable(`has ${tagProblem(buf, keyEnd)}`);
      headers[key] = decodeValue(buf.subarray(keyEnd, end), 0, 1).value;
    } catch (err) {
      const why = err instanceof Undecodable ? err.message : 'is truncated';
      problem ??= `header ${JSON.stringify(key)} ${why}`;
    }
    // Past a value whose length is unknown there is no telling where the next header starts.
    if (end === undefined) break;
    offset = end;
  }
  return { headers, problem };
}

function decodeTable(buf: Buffer, depth: number): Record<string, unknown> {
  const table: Record<string, unknown> = {};
  let offset = 0;
  while (offset < buf.length) {
    const keyEnd = offset + 1 + byteAt(buf, offset);
    const key = buf.toString('utf8', offset + 1, keyEnd);
    const { value, next } = decodeValue(buf, keyEnd, depth);
    table[key] = value;
    offset = next;
  }
  return table;
}

function decodeValue(buf: Buffer, at: number, depth: number): { value: unknown; next: number } {
  const tag = String.fromCharCode(byteAt(buf, at));
  const o = at + 1;
  switch (tag) {
    case 'b':
      return { value: buf.readInt8(o), next: o + 1 };
    case 'B':
      return { value: buf.readUInt8(o), next: o + 1 };
    case 's':
      return { value: buf.readInt16BE(o), next: o + 2 };
    case 'u':
      return { value: buf.readUInt16BE(o), next: o + 2 };
    case 'I':
      return { value: buf.readInt32BE(o), next: o + 4 };
    case 'i':
      return { value: buf.readUInt32BE(o), next: o + 4 };
    case 'l':
      return { value: Number(buf.readBigInt64BE(o)), next: o + 8 };
    case 'f':
      return { value: buf.readFloatBE(o), next: o + 4 };
    case 'd':
      return { value: buf.readDoubleBE(o), next: o + 8 };
    case 't':
      return { value: byteAt(buf, o) !== 0, next: o + 1 };
    case 'V':
      return { value: null, next: o };
    case 'D':
      return {
        value: { '!': 'decimal', value: { places: byteAt(buf, o), digits: buf.readUInt32BE(o + 1) } },
        next: o + 5,
      };
    case 'T':
      return { value: { '!': 'timestamp', value: Number(buf.readBigUInt64BE(o)) }, next: o + 8 };
    case 'S':
    case 'x':
    case 'F':
    case 'A': {
      const end = o + 4 + buf.readUInt32BE(o);
      if (end > buf.length) throw new RangeError('truncated');
      const body = buf.subarray(o + 4, end);
      if (tag === 'S') return { value: body.toString('utf8'), next: end };
      if (tag === 'x') return { value: body, next: end };
      if (depth > MAX_HEADER_DEPTH) {
        throw new Undecodable(`is nested deeper than ${MAX_HEADER_DEPTH} levels of tables and arrays`);
      }
      return { value: tag === 'F' ? decodeTable(body, depth + 1) : decodeArray(body, depth + 1), next: end };
    }
    default:
      throw new Undecodable(`has an unknown field type tag ${JSON.stringify(tag)}`);
  }
}

function decodeArray(buf: Buffer, depth: number): unknown[] {
  const values: unknown[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const { value, next } = decodeValue(buf, offset, depth);
    values.push(value);
    offset = next;
  }
  return values;
}

/** Where the value at `at` ends, from its tag and length alone; undefined when its tag is unknown. */
function valueEnd(buf: Buffer, at: number): number | undefined {
  if (at >= buf.length) return undefined;
  const fixed = FIXED_SIZES[String.fromCharCode(buf[at])];
  if (fixed !== undefined) return at + 1 + fixed;
  if ('SxFA'.includes(String.fromCharCode(buf[at])) && at + 5 <= buf.length) return at + 5 + buf.readUInt32BE(at + 1);
  return undefined;
}

function tagProblem(buf: Buffer, at: number): string {
  return at >= buf.length ? 'no value' : `an unknown field type tag ${JSON.stringify(String.fromCharCode(buf[at]))}`;
}

const FIXED_SIZES: Record<string, number> = {
  b: 1,
  B: 1,
  s: 2,
  u: 2,
  I: 4,
  i: 4,
  l: 8,
  f: 4,
  d: 8,
  t: 1,
  V: 0,
  D: 5,
  T: 8,
};

function byteAt(buf: Buffer, at: number): number {
  if (at >= buf.length) throw new RangeError('truncated');
  return buf[at];
}

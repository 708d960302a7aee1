import type { Options } from 'amqplib';
import { createRequire } from 'node:module';
import { encodeHeaderDates, MAX_HEADERS_BYTES, propertiesProblem } from './amqp-headers.js';

// amqplib's own encoder: whatever Warren lets through, it must be able to encode.
const amqplibRequire = createRequire(createRequire(import.meta.url).resolve('amqplib'));
const defs = amqplibRequire('./lib/defs.js') as {
  encodeProperties(id: number, channel: number, size: number, fields: unknown): Buffer;
  decode(id: number, buf: Buffer): { headers?: Record<string, unknown> };
};
const args = amqplibRequire('./lib/api_args.js') as { publish(e: string, k: string, o: Options.Publish): unknown };
const BASIC = 60;

function amqplibEncodes(properties: Options.Publish): Buffer {
  const withDates = { ...properties, headers: encodeHeaderDates(properties.headers) };
  return defs.encodeProperties(BASIC, 1, 0, args.publish('', 'q', withDates));
}

/** A small deterministic generator, so a failure replays. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const NUMBERS = [
  0,
  1,
  -1,
  127,
  128,
  -129,
  32768,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 50,
  2 ** 53,
  -(2 ** 63),
  2 ** 64,
  1.5,
  -0.25,
  1e308,
  -1e19,
  NaN,
  Infinity,
  -Infinity,
];

function value(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * 12);
  switch (pick) {
    case 0:
      return 'x'.repeat(Math.floor(next() * 3) === 0 ? Math.floor(next() * 30_000) : Math.floor(next() * 10));
    case 1:
      return NUMBERS[Math.floor(next() * NUMBERS.length)];
    case 2:
      return next() < 0.5;
    case 3:
      return null;
    case 4:
      return Buffer.alloc(Math.floor(next() * 100));
    case 5:
      return new Date(Math.floor(next() * 2e12));
    case 6:
      return depth > 70 ? 1 : Array.from({ length: Math.floor(next() * 3) }, () => value(next, depth + 1));
    case 7:
      return {
        '!': ['timestamp', 'int8', 'decimal', 'float', 'what'][Math.floor(next() * 5)],
        value: Math.floor(next() * 300) - 50,
      };
    case 8:
      return undefined;
    default:
      return depth > 70 ? 'deep' : table(next, depth + 1);
  }
}

function table(next: () => number, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const keys = Math.floor(next() * 4);
  for (let i = 0; i < keys; i++) {
    const key = next() < 0.05 ? 'k'.repeat(250 + Math.floor(next() * 10)) : `k${i}`;
    out[key] = value(next, depth);
  }
  // Now and then a chain deep enough to pass the limit.
  if (next() < 0.1) out.chain = chain(Math.floor(next() * 80));
  return out;
}

function chain(depth: number): unknown {
  let v: unknown = 'leaf';
  for (let i = 0; i < depth; i++) v = { n: v };
  return v;
}

describe('propertiesProblem: what AMQP (as amqplib encodes it) can carry', () => {
  it('whatever it lets through, amqplib encodes (2 000 random header tables)', () => {
    const next = random(13);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 2000; i++) {
      const headers = table(next, 0);
      const problem = propertiesProblem({ headers });
      if (problem === null) {
        accepted++;
        expect(() => amqplibEncodes({ headers })).not.toThrow();
      } else {
        refused++;
      }
    }
    // Both outcomes were exercised.
    expect(accepted).toBeGreaterThan(200);
    expect(refused).toBeGreaterThan(200);
  });

  it('refuses each thing amqplib cannot encode, and amqplib indeed cannot', () => {
    const cases: [Options.Publish, RegExp][] = [
      [{ headers: { ['k'.repeat(256)]: 1 } }, /headers has a key of 256 bytes, over AMQP's limit of 255/],
      [{ headers: { n: -Infinity } }, /headers\.n is -Infinity, which AMQP cannot encode/],
      [{ headers: { n: -1e19 } }, /headers\.n is -10000000000000000000, below the 64-bit integers/],
      [{ headers: { big: 'x'.repeat(MAX_HEADERS_BYTES) } }, /headers encode to 65549 bytes, over the 65536/],
      [{ headers: { t: { '!': 'nonsense' } } }, /headers\.t has a "!" key.*"nonsense" is no type it knows/],
      [
        { headers: { t: { '!': 'int8', value: 300 } } },
        /headers\.t is a int8 whose value is not an integer from -128 to 127/,
      ],
      [{ priority: 300 }, /priority must be an integer from 0 to 255/],
      [{ messageId: 'm'.repeat(256) }, /messageId is 256 bytes, over AMQP's limit of 255/],
      [{ type: 'é'.repeat(128) }, /type is 256 bytes/],
      [{ appId: 7 as unknown as string }, /appId must be a string, not a number/],
      [{ timestamp: -1 }, /timestamp must be whole seconds since the epoch/],
      [{ timestamp: 2 ** 64 }, /timestamp must be whole seconds since the epoch/],
    ];
    for (const [properties, reason] of cases) {
      expect(propertiesProblem(properties)).toMatch(reason);
      expect(() => amqplibEncodes(properties)).toThrow();
    }
  });

  it('refuses expirations RabbitMQ refuses (it would close the channel) and takes the rest', () => {
    for (const bad of [-1, 1.5, NaN, 2 ** 32, '-1', '1.5', '', ' 1', '01', 'abc']) {
      expect(propertiesProblem({ expiration: bad as string })).toMatch(
        /^expiration must be a whole number of milliseconds from 0 to 4294967295/,
      );
    }
    for (const good of [0, 1, 60_000, 4_294_967_295, '0', '1000']) {
      expect(propertiesProblem({ expiration: good as string })).toBeNull();
    }
  });

  it('takes what amqplib decodes, so a received message can be sent on: timestamps, decimals, 64 levels', () => {
    const received = {
      at: { '!': 'timestamp', value: 1_700_000_000 },
      price: { '!': 'decimal', value: { places: 2, digits: 1999 } },
      deep: chain(64),
    };
    expect(propertiesProblem({ headers: received })).toBeNull();
    expect(propertiesProblem({ headers: { deep: chain(65) } })).toMatch(/nested deeper than 64 levels/);
  });

  it('sends a Date as an AMQP timestamp, not as an empty table', () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    const headers = { at, nested: { list: [at] }, plain: 1 };
    expect(propertiesProblem({ headers })).toBeNull();
    const encoded = amqplibEncodes({ headers });
    // The frame's payload: class id, weight, body size (12 bytes) then the properties.
    const decoded = defs.decode(BASIC, encoded.subarray(7 + 12, encoded.length - 1));
    const seconds = Math.floor(at.getTime() / 1000);
    expect(decoded.headers).toEqual({
      at: { '!': 'timestamp', value: seconds },
      nested: { list: [{ '!': 'timestamp', value: seconds }] },
      plain: 1,
    });
    // Headers without a Date are passed on as they are.
    const plain = { a: 1 };
    expect(encodeHeaderDates(plain)).toBe(plain);
    expect(propertiesProblem({ headers: { d: new Date(NaN) } })).toMatch(/headers\.d is a Date before 1970 or invalid/);
  });
});

import { createRequire } from 'node:module';
import { deepTable, field, rawProperties, table } from '../../../../test/support/raw-amqp.js';
import { decodePropertiesSafely, MAX_HEADER_DEPTH } from './amqp-properties-decoder.js';

// amqplib's own decoder, to hold Warren's fallback to the same shapes.
const amqplibRequire = createRequire(createRequire(import.meta.url).resolve('amqplib'));
const defs = amqplibRequire('./lib/defs.js') as { decode(id: number, buf: Buffer): unknown };
const BASIC = 60;

describe('decodePropertiesSafely: the fallback for content headers amqplib cannot decode', () => {
  it('decodes every property and every field type as amqplib does', () => {
    const headers = table([
      ['s', field.string('héllo')],
      ['i', field.int(-70_000)],
      ['l', field.long(-(2n ** 40n))],
      ['d', field.double(1.5)],
      ['t', field.bool(true)],
      ['v', field.void()],
      ['x', field.bytes(Buffer.from([1, 2, 3]))],
      ['ts', field.timestamp(1_700_000_000n)],
      ['nested', field.table([['a', field.array([field.int(1), field.table([['b', field.string('c')]])])]])],
      ['b', Buffer.from([0x62, 0xff])],
      ['B', Buffer.from([0x42, 0xff])],
      ['short', Buffer.from([0x73, 0x80, 0x00])],
      ['u', Buffer.from([0x75, 0xff, 0xff])],
      ['f', Buffer.from([0x66, 0x3f, 0xc0, 0x00, 0x00])],
      ['D', Buffer.from([0x44, 2, 0, 0, 0x30, 0x39])],
    ]);
    const buf = rawProperties({
      contentType: 'application/json',
      contentEncoding: 'gzip',
      headers,
      deliveryMode: 2,
      priority: 5,
      correlationId: 'c',
      replyTo: 'r',
      expiration: '1000',
      messageId: 'm'.repeat(255),
      timestamp: 1_700_000_000n,
      type: 't',
      userId: 'guest',
      appId: 'a',
    });
    const { properties, problem } = decodePropertiesSafely(buf);
    expect(problem).toBeUndefined();
    expect(properties).toEqual(
      Object.fromEntries(Object.entries(defs.decode(BASIC, buf) as object).filter(([, v]) => v !== undefined)),
    );
  });

  it('leaves out a header nested deeper than the limit, keeps the others, and says which', () => {
    const deep = deepTable('evil', 10_000);
    // The deep table, followed by a plain header in the same table.
    const entries = Buffer.concat([deep.subarray(4), Buffer.from([2]), Buffer.from('ok'), field.string('yes')]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(entries.length);
    const { properties, problem } = decodePropertiesSafely(
      rawProperties({ headers: Buffer.concat([length, entries]), messageId: 'id' }),
    );
    expect(problem).toBe(`header "evil" is nested deeper than ${MAX_HEADER_DEPTH} levels of tables and arrays`);
    expect(properties).toEqual({ headers: { ok: 'yes' }, messageId: 'id' });
  });

  it('keeps headers up to the limit', () => {
    const { properties, problem } = decodePropertiesSafely(
      rawProperties({ headers: deepTable('fine', MAX_HEADER_DEPTH) }),
    );
    expect(problem).toBeUndefined();
    let value = (properties.headers as Record<string, unknown>).fine;
    let depth = 1;
    while (value && Object.keys(value).length) {
      value = (value as Record<string, unknown>).n;
      depth++;
    }
    expect(depth).toBe(MAX_HEADER_DEPTH);
  });

  it('an unknown type tag or a truncated table is a problem, never a throw', () => {
    const unknownTag = decodePropertiesSafely(
      rawProperties({
        headers: table([
          ['good', field.int(1)],
          ['odd', Buffer.from('Z123')],
        ]),
        type: 'after',
      }),
    );
    expect(unknownTag.problem).toBe('header "odd" has an unknown field type tag "Z"');
    expect(unknownTag.properties).toEqual({ headers: { good: 1 }, type: 'after' });

    const cut = rawProperties({ headers: table([['s', field.string('long enough')]]) });
    const truncated = decodePropertiesSafely(cut.subarray(0, cut.length - 3));
    expect(truncated.problem).toMatch(/header table runs past the end/);

    const inner = field.string('x');
    inner.writeUInt32BE(1000, 1);
    expect(decodePropertiesSafely(rawProperties({ headers: table([['s', inner]]) })).problem).toBe(
      'header "s" is truncated',
    );
    expect(decodePropertiesSafely(Buffer.alloc(1)).problem).toMatch(/the properties cannot be decoded/);
  });
});

import { MessageDecodeError, UnsupportedContentTypeError, PublishError } from '../warren.errors.js';
import { decodePayload, encodePayload } from './message-codec.js';

describe('message codec', () => {
  it.each([0, false, '', null, 'text', [1, 'a'], { a: { b: [null] } }])('round-trips %p as JSON', (value) => {
    const { content, contentType } = encodePayload(value);
    expect(contentType).toBe('application/json');
    expect(decodePayload(content, contentType)).toEqual(value);
  });

  it('sends strings as raw text when asked for a text type, and reads them back as strings', () => {
    const { content, contentType } = encodePayload('Hello World!', 'text/plain');
    expect(content.toString()).toBe('Hello World!');
    expect(decodePayload(content, contentType)).toBe('Hello World!');
  });

  it('reads a body without content type as text, never as a crash', () => {
    expect(decodePayload(Buffer.from('Hello World!'), undefined)).toBe('Hello World!');
    expect(decodePayload(Buffer.from('{not json'), undefined)).toBe('{not json');
  });

  it('keeps application/octet-stream as a Buffer', () => {
    const body = Buffer.from([0, 1, 2]);
    expect(decodePayload(body, 'application/octet-stream')).toBe(body);
  });

  it('refuses any other type as one no built-in codec reads', () => {
    expect(() => decodePayload(Buffer.from([0, 1, 2]), 'image/png')).toThrow(UnsupportedContentTypeError);
  });

  it('throws MessageDecodeError for a JSON body that does not parse', () => {
    expect(() => decodePayload(Buffer.from('{"a":'), 'application/json')).toThrow(MessageDecodeError);
  });

  it('drops __proto__ keys so decoded payloads cannot pollute prototypes', () => {
    const decoded = decodePayload(
      Buffer.from('{"a":1,"__proto__":{"polluted":true},"b":{"__proto__":{"x":1}}}'),
      'application/json',
    );
    const merged = Object.assign({}, decoded);
    expect((merged as { polluted?: boolean }).polluted).toBeUndefined();
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    expect(decoded).toEqual({ a: 1, b: {} });
  });

  it('drops them however the key is written, and a constructor holding a prototype', () => {
    const decoded = decodePayload(
      Buffer.from(
        '{"\\u005f_proto__":{"p":1},"\\u005f\\u005fpr\\u006fto__":{"p":2},"constructor":{"prototype":{"p":3}},"ok":{"constructor":"a name"}}',
      ),
      'application/json',
    ) as Record<string, unknown>;
    expect(Object.keys(decoded)).toEqual(['ok']);
    expect(decoded.ok).toEqual({ constructor: 'a name' });
  });

  it('refuses payloads with no JSON form, naming why', () => {
    expect(() => encodePayload(10n)).toThrow(PublishError);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => encodePayload(cycle)).toThrow(/cannot be serialised to JSON: .*circular/i);
    expect(() => encodePayload(undefined)).toThrow(/has no JSON form/);
  });
  it('reads text in the charset its content type names; refuses one it cannot read, or bytes invalid in it', () => {
    expect(decodePayload(Buffer.from('"Zoë"', 'utf16le'), 'application/json; charset="utf-16le"')).toBe('Zoë');
    expect(decodePayload(Buffer.from([0x5a, 0x6f, 0xeb]), 'text/plain; charset=ISO-8859-1')).toBe('Zoë');
    expect(decodePayload(Buffer.from('Zoë'), 'text/plain; charset=utf-8')).toBe('Zoë');
    expect(() => decodePayload(Buffer.from('x'), 'text/plain; charset=x-klingon')).toThrow(
      new MessageDecodeError('Body cannot be decoded: charset "x-klingon" is not supported'),
    );
    expect(() => decodePayload(Buffer.from([0xff, 0xfe, 0xfd]), 'text/plain; charset=utf-16le')).toThrow(
      'Body is not valid utf-16le text',
    );
  });
});

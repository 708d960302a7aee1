import * as msgpackr from 'msgpackr';
import {
  MessageDecodeError,
  PublishError,
  UnsupportedContentTypeError,
  WarrenConfigurationError,
} from '../warren.errors.js';
import { MessageCodecs, type WarrenCodec } from './codecs.js';
import { msgpackCodec } from './msgpack-codec.js';

const upper: WarrenCodec = {
  contentType: 'text/x-upper',
  encode: (payload) => Buffer.from(String(payload).toUpperCase()),
  decode: (content, contentType) => `${content.toString().toLowerCase()} (${contentType})`,
};

describe('MessageCodecs', () => {
  const codecs = new MessageCodecs([msgpackCodec(msgpackr), upper]);

  it('encodes with the codec of the content type asked for, keeping the type as given', () => {
    const { content, contentType } = codecs.encode({ a: 1 }, 'application/x-msgpack; v=1');
    expect(contentType).toBe('application/x-msgpack; v=1');
    expect(msgpackr.unpack(content)).toEqual({ a: 1 });
    expect(codecs.encode('hi', 'TEXT/X-UPPER').content.toString()).toBe('HI');
  });

  it('decodes by the media type, parameters and case ignored, handing the codec the whole type', () => {
    expect(codecs.decode(msgpackr.pack([1, 'two']), 'Application/X-MsgPack')).toEqual([1, 'two']);
    expect(codecs.decode(Buffer.from('ABC'), 'text/x-upper; charset=utf-8')).toBe('abc (text/x-upper; charset=utf-8)');
  });

  it('keeps the built-in JSON, text and bytes, and JSON when no type is asked for', () => {
    expect(codecs.encode({ a: 1 }).contentType).toBe('application/json');
    expect(codecs.decode(Buffer.from('{"a":1}'), 'application/vnd.acme+json')).toEqual({ a: 1 });
    expect(codecs.decode(Buffer.from('plain'), undefined)).toBe('plain');
    const bytes = Buffer.from([0, 1]);
    expect(codecs.decode(bytes, 'application/octet-stream')).toBe(bytes);
    expect(codecs.encode(bytes, 'application/anything').content).toBe(bytes);
  });

  it('refuses to publish a type no codec writes, or bytes it is not given as bytes', () => {
    expect(() => codecs.encode({ a: 1 }, 'application/cbor')).toThrow(
      new PublishError(
        'no codec for content type "application/cbor": register one in the module\'s codecs, or give the payload as a Buffer',
      ),
    );
    expect(() => codecs.encode({ a: 1 }, 'application/octet-stream')).toThrow(
      /is raw bytes: give the payload as a Buffer/,
    );
  });

  it('names the content type when a codec fails either way', () => {
    const failing = new MessageCodecs([
      {
        contentType: 'application/x-bad',
        encode: () => {
          throw new Error('cannot');
        },
        decode: () => {
          throw new Error('truncated');
        },
      },
      { contentType: 'application/x-odd', encode: () => 'text' as unknown as Buffer, decode: () => null },
    ]);
    expect(() => failing.encode({}, 'application/x-bad')).toThrow(PublishError);
    expect(() => failing.encode({}, 'application/x-bad')).toThrow(
      'payload cannot be encoded as application/x-bad: cannot',
    );
    expect(() => failing.encode({}, 'application/x-odd')).toThrow(
      "the application/x-odd codec's encode() returned string, not a Buffer or Uint8Array",
    );
    const decodeError = (() => {
      try {
        failing.decode(Buffer.alloc(1), 'application/x-bad');
      } catch (err) {
        return err;
      }
    })();
    expect(decodeError).toBeInstanceOf(MessageDecodeError);
    expect((decodeError as Error).message).toBe('Body cannot be decoded as application/x-bad: truncated');
  });

  it('makes a message of a type no codec reads an UnsupportedContentTypeError (poison)', () => {
    expect(() => codecs.decode(Buffer.from('<a/>'), 'application/xml')).toThrow(UnsupportedContentTypeError);
    expect(() => new MessageCodecs().decode(msgpackr.pack(1), 'application/x-msgpack')).toThrow(
      /no codec for content type "application\/x-msgpack"/,
    );
  });

  it('lets a module codec replace a built-in one', () => {
    const json = new MessageCodecs([
      { contentType: 'application/json', encode: () => Buffer.from('"mine"'), decode: () => 'mine' },
    ]);
    expect(json.encode({ a: 1 }, 'application/json').content.toString()).toBe('"mine"');
    expect(json.decode(Buffer.from('{}'), 'application/json')).toBe('mine');
  });

  it('takes a Uint8Array from an encoder as a Buffer over the same bytes', () => {
    const u8 = new MessageCodecs([
      { contentType: 'application/x-u8', encode: () => new Uint8Array([7, 8, 9]).subarray(1), decode: () => null },
    ]);
    expect([...u8.encode(null, 'application/x-u8').content]).toEqual([8, 9]);
  });

  it.each([
    [{}, 'codecs must be an array of codecs'],
    [[null], 'codecs[0]: a codec is an object with contentType, encode and decode'],
    [
      [{ contentType: 'application/json; charset=utf-8', encode() {}, decode() {} }],
      'codecs[0]: contentType must be a media type',
    ],
    [
      [{ contentType: 'application/x', decode() {} }],
      'codecs[0]: the codec of "application/x" has no encode(payload) function',
    ],
    [[upper, { ...upper, contentType: 'TEXT/X-UPPER' }], 'codecs[1]: a codec for "text/x-upper" is already registered'],
  ])('refuses %j as codecs, naming the entry', (value, message) => {
    expect(() => new MessageCodecs(value)).toThrow(WarrenConfigurationError);
    expect(() => new MessageCodecs(value)).toThrow(message);
  });

  it('refuses to build a MessagePack codec on something that is not msgpackr', () => {
    expect(() => msgpackCodec({} as never)).toThrow(WarrenConfigurationError);
  });
});

import { MessageDecodeError, PublishError, WarrenConfigurationError } from '../warren.errors.js';
import { decodePayload, encodePayload, type Encoded, isJsonType, mediaType } from './message-codec.js';

/**
 * An encoder and decoder for one content type, given to the module's `codecs`. Chosen at publish
 * by the `contentType` the caller asks for, and at receipt by the message's `content-type`
 * (without its parameters, case-insensitively).
 */
export interface WarrenCodec {
  /** The media type it writes and reads, e.g. `application/x-msgpack`, without parameters. */
  readonly contentType: string;
  /** Payload → bytes. A throw fails the publish with a PublishError naming the content type. */
  encode(payload: unknown): Buffer | Uint8Array;
  /**
   * Bytes → payload; `contentType` is the message's own, parameters included. A throw makes the
   * message poison: dead-lettered, never retried.
   */
  decode(content: Buffer, contentType: string): unknown;
}

/** RFC 6838's `type/subtype`: what a codec's `contentType` must be. */
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/i;

/**
 * The codecs of one connection: the module's `codecs` first, then the built-in ones (JSON,
 * text, bytes). A module codec for a built-in type replaces the built-in one.
 */
export class MessageCodecs {
  private readonly byType = new Map<string, WarrenCodec>();

  /** Throws WarrenConfigurationError naming the entry of `codecs` that cannot be a codec. */
  constructor(codecs: unknown = []) {
    const who = 'WarrenModule options: codecs';
    if (!Array.isArray(codecs)) throw new WarrenConfigurationError(`${who} must be an array of codecs`);
    codecs.forEach((codec: unknown, i) => {
      const problem = codecProblem(codec);
      if (problem) throw new WarrenConfigurationError(`${who}[${i}]: ${problem}`);
      const type = (codec as WarrenCodec).contentType.toLowerCase();
      if (this.byType.has(type)) {
        throw new WarrenConfigurationError(`${who}[${i}]: a codec for "${type}" is already registered; keep one`);
      }
      this.byType.set(type, codec as WarrenCodec);
    });
  }

  /** The content types the module's codecs add, in registration order (for read-outs). */
  get contentTypes(): string[] {
    return [...this.byType.keys()];
  }

  /** Whether one of the module's codecs writes and reads `contentType` (parameters ignored). */
  has(contentType: string | undefined): boolean {
    return typeof contentType === 'string' && this.byType.has(mediaType(contentType));
  }

  /**
   * Payload → bytes with the codec of `contentType`: a Buffer goes as it is (bytes the caller
   * encoded), no content type means JSON. Throws PublishError naming the content type when no
   * codec writes it or the codec fails.
   */
  encode(payload: unknown, contentType?: string): Encoded {
    if (Buffer.isBuffer(payload) || typeof contentType !== 'string') return encodePayload(payload, contentType);
    const type = mediaType(contentType);
    const codec = this.byType.get(type);
    if (codec) return { content: encodedWith(codec, payload, type), contentType };
    if (isJsonType(type) || type.startsWith('text/')) return encodePayload(payload, contentType);
    throw new PublishError(
      type === 'application/octet-stream'
        ? `content type "${contentType}" is raw bytes: give the payload as a Buffer`
        : `no codec for content type "${contentType}": register one in the module's codecs, or give the payload as a Buffer`,
    );
  }

  /**
   * Bytes → payload with the codec of `contentType`. Throws a MessageDecodeError (poison) when the
   * codec fails, an UnsupportedContentTypeError when no codec reads the type.
   */
  decode(content: Buffer, contentType: string | undefined): unknown {
    const codec = contentType ? this.byType.get(mediaType(contentType)) : undefined;
    if (!codec) return decodePayload(content, contentType);
    try {
      return codec.decode(content, contentType as string);
    } catch (err) {
      throw new MessageDecodeError(
        `Body cannot be decoded as ${mediaType(contentType as string)}: ${(err as Error)?.message ?? String(err)}`,
        { cause: err },
      );
    }
  }
}

function encodedWith(codec: WarrenCodec, payload: unknown, type: string): Buffer {
  let bytes: unknown;
  try {
    bytes = codec.encode(payload);
  } catch (err) {
    throw new PublishError(`payload cannot be encoded as ${type}: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
    });
  }
  if (Buffer.isBuffer(bytes)) return bytes;
  if (bytes instanceof Uint8Array) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new PublishError(`the ${type} codec's encode() returned ${typeof bytes}, not a Buffer or Uint8Array`);
}

function codecProblem(codec: unknown): string | null {
  if (codec === null || typeof codec !== 'object') return 'a codec is an object with contentType, encode and decode';
  const { contentType, encode, decode } = codec as Partial<WarrenCodec>;
  if (typeof contentType !== 'string' || !MEDIA_TYPE.test(contentType)) {
    return `contentType must be a media type such as "application/x-msgpack" (no parameters), got ${JSON.stringify(contentType) ?? String(contentType)}`;
  }
  if (contentType.length > 255) return `contentType "${contentType.slice(0, 40)}…" is over AMQP's 255 bytes`;
  if (typeof encode !== 'function') return `the codec of "${contentType}" has no encode(payload) function`;
  if (typeof decode !== 'function') return `the codec of "${contentType}" has no decode(content) function`;
  return null;
}

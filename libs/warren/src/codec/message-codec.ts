import { TextDecoder } from 'node:util';
import { MessageDecodeError, PublishError, UnsupportedContentTypeError } from '../warren.errors.js';

export const JSON_CONTENT_TYPE = 'application/json';
export const TEXT_CONTENT_TYPE = 'text/plain';
export const BYTES_CONTENT_TYPE = 'application/octet-stream';

export interface Encoded {
  content: Buffer;
  contentType?: string;
}

/**
 * Payload → bytes. Buffers go as they are; strings go as UTF-8 text when the caller asks for a
 * `text/*` content type (what the tutorials' programs in other languages send and expect);
 * everything else, falsy values included, is JSON.
 */
export function encodePayload(payload: unknown, contentType?: string): Encoded {
  if (Buffer.isBuffer(payload)) return { content: payload, contentType };
  if (typeof payload === 'string' && contentType?.startsWith('text/')) {
    return { content: Buffer.from(payload, 'utf8'), contentType };
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(payload);
  } catch (err) {
    throw new PublishError(`Payload cannot be serialised to JSON: ${(err as Error).message}`, { cause: err });
  }
  if (json === undefined) {
    throw new PublishError(`Payload of type ${typeof payload} has no JSON form; send null, a value or a Buffer`);
  }
  return { content: Buffer.from(json, 'utf8'), contentType: contentType ?? JSON_CONTENT_TYPE };
}

/**
 * Bytes → payload with the built-in codecs, by content type: JSON types are parsed, text types and
 * messages with no content type (plain bytes from another language's client) become strings,
 * `application/octet-stream` stays a Buffer. Throws MessageDecodeError for a JSON body that does
 * not parse, UnsupportedContentTypeError for any other type (the module's codecs come first, in
 * `codecs.ts`).
 */
export function decodePayload(content: Buffer, contentType: string | undefined): unknown {
  if (contentType === undefined || contentType === '') return content.toString('utf8');
  const type = mediaType(contentType);
  if (isJsonType(type)) return parseJson(textOf(content, contentType));
  if (type.startsWith('text/')) return textOf(content, contentType);
  if (type === BYTES_CONTENT_TYPE) return content;
  throw new UnsupportedContentTypeError(contentType);
}

/**
 * The body as text in the content type's `charset` (UTF-8 without one). A sender that says
 * `charset=utf-16le` or `iso-8859-1` means it: read as UTF-8, its text would reach the handler
 * garbled. A charset this runtime cannot decode, or bytes invalid in the one named, make the
 * message poison with a reason naming the charset.
 */
function textOf(content: Buffer, contentType: string): string {
  const charset = charsetOf(contentType);
  if (charset === undefined || charset === 'utf-8' || charset === 'utf8') return content.toString('utf8');
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset, { fatal: true });
  } catch {
    throw new MessageDecodeError(`Body cannot be decoded: charset "${charset}" is not supported`);
  }
  try {
    return decoder.decode(content);
  } catch (err) {
    throw new MessageDecodeError(`Body is not valid ${charset} text`, { cause: err });
  }
}

/** `text/plain; charset="UTF-16LE"` → `utf-16le`; undefined without parameters (the common case, checked first). */
function charsetOf(contentType: string): string | undefined {
  if (contentType.indexOf(';') === -1) return undefined;
  const match = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType);
  return match?.[1].toLowerCase();
}

/** `application/json` and the structured `+json` types (`application/vnd.acme+json`). */
export function isJsonType(type: string): boolean {
  return type === JSON_CONTENT_TYPE || type.endsWith('+json');
}

/** A content type without its parameters, lower-cased: `Application/JSON; charset=utf-8` → `application/json`. */
export function mediaType(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

function parseJson(text: string): unknown {
  try {
    // The reviver is costly, so it runs only on the rare bodies that could hold such a key: one
    // spelled out, or written with escapes (`"\\u005f_proto__"` parses to `__proto__`).
    return POLLUTING_TEXT.test(text) ? JSON.parse(text, dropPollutingKeys) : JSON.parse(text);
  } catch (err) {
    throw new MessageDecodeError(`Body is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

const POLLUTING_TEXT = /__proto__|prototype|\\u/;

/**
 * Keys that a naive deep merge in a handler would follow into a prototype: `__proto__` (JSON.parse
 * makes it an own property, harmless until merged into another object), and `constructor` holding
 * a `prototype` (`target.constructor.prototype` is Object.prototype). Both are dropped after
 * parsing, at any depth, however the key was written.
 */
function dropPollutingKeys(key: string, value: unknown): unknown {
  if (key === '__proto__') return undefined;
  if (key === 'constructor' && value !== null && typeof value === 'object' && Object.hasOwn(value, 'prototype')) {
    return undefined;
  }
  return value;
}

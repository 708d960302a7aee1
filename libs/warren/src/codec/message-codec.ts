import { MessageDecodeError, PublishError } from '../warren.errors.js';

export const JSON_CONTENT_TYPE = 'application/json';
export const TEXT_CONTENT_TYPE = 'text/plain';

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
 * Bytes → payload, by content type: JSON types are parsed, text types and messages with no
 * content type (plain bytes from another language's client) become strings, anything else stays a
 * Buffer. Throws MessageDecodeError for a JSON body that does not parse.
 */
export function decodePayload(content: Buffer, contentType: string | undefined): unknown {
  if (contentType === undefined || contentType === '') return content.toString('utf8');
  const type = mediaType(contentType);
  if (type === JSON_CONTENT_TYPE || type.endsWith('+json')) return parseJson(content.toString('utf8'));
  if (type.startsWith('text/')) return content.toString('utf8');
  return content;
}

function mediaType(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

function parseJson(text: string): unknown {
  try {
    // A "__proto__" key parses to an own property, harmless until some code merges the object
    // into another; drop it so no handler can be tricked into polluting a prototype. The reviver
    // is costly, so it only runs on the rare bodies that contain the key at all.
    return text.includes('__proto__') ? JSON.parse(text, dropProtoKeys) : JSON.parse(text);
  } catch (err) {
    throw new MessageDecodeError(`Body is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function dropProtoKeys(key: string, value: unknown): unknown {
  return key === '__proto__' ? undefined : value;
}

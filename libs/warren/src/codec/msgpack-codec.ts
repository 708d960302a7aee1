import { WarrenConfigurationError } from '../warren.errors.js';
import type { WarrenCodec } from './codecs.js';

/**
 * What `msgpackCodec` needs of msgpackr: its module (`import * as msgpackr from 'msgpackr'`) or
 * a `new Packr({...})` of your own options. Taken as an argument, so Warren never loads msgpackr
 * itself: an app that does not use MessagePack does not need it installed.
 */
export interface MessagePackr {
  pack(value: unknown): Buffer | Uint8Array;
  unpack(content: Buffer): unknown;
}

/** The content type `msgpackCodec` writes unless told otherwise: the one Celery and Kombu use. */
export const MSGPACK_CONTENT_TYPE = 'application/x-msgpack';

/**
 * A MessagePack codec for the module's `codecs`, on msgpackr:
 * `codecs: [msgpackCodec(msgpackr)]`, then `publish(exchange, key, payload, { contentType:
 * 'application/x-msgpack' })`. Give another `contentType` for peers that say
 * `application/msgpack` or `application/vnd.msgpack` (register one codec per type you receive).
 * For consumers that are not msgpackr, keep records off (`new Packr({ useRecords: false })`,
 * which the module's own `pack` already is): records are an msgpackr extension.
 */
export function msgpackCodec(packr: MessagePackr, options: { contentType?: string } = {}): WarrenCodec {
  if (typeof packr?.pack !== 'function' || typeof packr.unpack !== 'function') {
    throw new WarrenConfigurationError(
      "msgpackCodec(): give msgpackr's module or a Packr (something with pack() and unpack())",
    );
  }
  return {
    contentType: options.contentType ?? MSGPACK_CONTENT_TYPE,
    encode: (payload) => packr.pack(payload),
    decode: (content) => packr.unpack(content),
  };
}

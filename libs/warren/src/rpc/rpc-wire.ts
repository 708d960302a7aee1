/**
 * How a reply says it is an error: this header, with a JSON body
 * `{ name, message, code?, status?, response?, stack? }`.
 * Anything without the header is a successful reply, whoever sent it.
 */
export const RPC_ERROR_HEADER = 'x-warren-error';

export interface RpcErrorBody {
  name: string;
  message: string;
  code?: string | number;
  /** An `HttpException`'s status (`NotFoundException`: 404), so the caller can answer the same. */
  status?: number;
  /** An `HttpException`'s response body (`{ statusCode, message, error }`). */
  response?: unknown;
  stack?: string;
}

/**
 * How the broker spells a direct reply-to address: `amq.rabbitmq.reply-to.<calling channel>.<key>`,
 * the channel (its node among it) before the last dot.
 */
export const DIRECT_REPLY_TO_PREFIX = 'amq.rabbitmq.reply-to.';

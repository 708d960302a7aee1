import type { MessageProperties, Options } from 'amqplib';
import { randomBytes } from 'node:crypto';

/**
 * What the in-memory broker shares with the wire: reply codes, the errors amqplib makes of them
 * (same texts, same `code`), and the encode/decode round trip a message's properties go through.
 */

/** AMQP 0-9-1 reply codes, by the names RabbitMQ puts in front of its reply texts. */
export const REPLY_CODES = {
  REPLY_SUCCESS: 200,
  NO_ROUTE: 312,
  CONNECTION_FORCED: 320,
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
  COMMAND_INVALID: 503,
  NOT_ALLOWED: 530,
  NOT_IMPLEMENTED: 540,
} as const;
export type ReplyName = keyof typeof REPLY_CODES;

/** The AMQP methods the broker answers, with their (class id, method id) as amqplib reports them. */
const METHOD_IDS = {
  ChannelOpen: [20, 10],
  ExchangeDeclare: [40, 10],
  ExchangeDelete: [40, 20],
  ExchangeBind: [40, 30],
  ExchangeUnbind: [40, 40],
  QueueDeclare: [50, 10],
  QueueBind: [50, 20],
  QueuePurge: [50, 30],
  QueueDelete: [50, 40],
  QueueUnbind: [50, 50],
  BasicQos: [60, 10],
  BasicConsume: [60, 20],
  BasicCancel: [60, 30],
  BasicPublish: [60, 40],
  BasicGet: [60, 70],
  BasicAck: [60, 80],
  BasicReject: [60, 90],
  BasicNack: [60, 120],
  ConfirmSelect: [85, 10],
} as const;
export type AmqpMethod = keyof typeof METHOD_IDS;

/**
 * The broker refusing an operation. A channel refusal closes the channel it came on, a connection
 * refusal the whole connection, exactly as RabbitMQ does.
 */
export class BrokerRefusal extends Error {
  readonly code: number;
  /** RabbitMQ's reply text: `NOT_FOUND - no queue 'q' in vhost '/'`. */
  readonly replyText: string;

  constructor(
    readonly reply: ReplyName,
    detail: string,
    readonly scope: 'channel' | 'connection' = 'channel',
  ) {
    super(`${reply} - ${detail}`);
    this.code = REPLY_CODES[reply];
    this.replyText = `${reply} - ${detail}`;
  }

  /** amqplib's rendering: `406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - ..."`. */
  get closeMessage(): string {
    return `${this.code} (${this.reply.replace(/_/g, '-')}) with message "${this.replyText}"`;
  }
}

/** An Error carrying amqplib's `code`, `classId` and `methodId`. */
export type AmqpError = Error & { code?: number; classId?: number; methodId?: number };

function amqpError(message: string, refusal: BrokerRefusal, method?: AmqpMethod): AmqpError {
  const error: AmqpError = new Error(message);
  error.code = refusal.code;
  if (method) [error.classId, error.methodId] = METHOD_IDS[method];
  return error;
}

/** How amqplib rejects the operation that made the broker close the channel. */
export function operationFailed(method: AmqpMethod, refusal: BrokerRefusal): AmqpError {
  return amqpError(`Operation failed: ${method}; ${refusal.closeMessage}`, refusal, method);
}

/** The channel's 'error' event (and the reply of an operation other than the culprit). */
export function channelClosedByServer(refusal: BrokerRefusal, method?: AmqpMethod): AmqpError {
  return amqpError(`Channel closed by server: ${refusal.closeMessage}`, refusal, method);
}

/** The connection's 'error' and 'close' events when the broker closes it. */
export function connectionClosed(refusal: BrokerRefusal): AmqpError {
  return amqpError(`Connection closed: ${refusal.closeMessage}`, refusal);
}

/** amqplib's error for an operation on a channel or connection that is closed or closing. */
export class IllegalOperationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IllegalOperationError';
  }
}

/** RabbitMQ's generated names: `amq.gen-…` queues, `amq.ctag-…` consumer tags (16 random bytes, base64url). */
export function generatedName(prefix: 'amq.gen-' | 'amq.ctag-'): string {
  return prefix + randomBytes(16).toString('base64url');
}

/**
 * A field table after amqplib has encoded it and decoded it again: undefined values dropped (also
 * those on the prototype chain, which amqplib walks), `{ '!': type, value }` typed values reduced
 * to what comes back (timestamps stay typed), Buffers copied, nothing shared with the sender.
 */
export function wireTable(table: object | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (table === null || table === undefined) return out;
  for (const key in table) {
    const value = (table as Record<string, unknown>)[key];
    if (value !== undefined) out[key] = wireValue(value);
  }
  return out;
}

function wireValue(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'number':
      return value;
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) return value.map(wireValue);
      if (Buffer.isBuffer(value)) return Buffer.from(value);
      if (Object.hasOwn(value, '!')) return typedValue(value as { '!': unknown; value: unknown });
      return wireTable(value);
    }
    default:
      throw new TypeError(`Unknown type to encode: ${typeof value}`);
  }
}

function typedValue({ '!': type, value }: { '!': unknown; value: unknown }): unknown {
  switch (type) {
    case 'timestamp':
      return { '!': 'timestamp', value: Number(value) };
    case 'decimal': {
      const { places, digits } = value as { places: number; digits: number };
      return { '!': 'decimal', value: { places, digits } };
    }
    case 'float':
      return Math.fround(Number(value));
    case 'string':
    case 'boolean':
      return value;
    default:
      // byte, short, int, long, double and their aliases all come back as plain numbers.
      return Number(value);
  }
}

/** A table's value as RabbitMQ names it in an "inequivalent arg" text: `the value '1000' of type 'short'`. */
export function describeArgument(value: unknown): string {
  if (value === undefined) return 'none';
  return `the value '${String(value)}' of type '${argumentType(value)}'`;
}

function argumentType(value: unknown): string {
  if (typeof value === 'string') return 'longstr';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return 'double';
    if (value >= -128 && value < 128) return 'byte';
    if (value >= -0x8000 && value < 0x8000) return 'short';
    if (value >= -0x80000000 && value < 0x80000000) return 'signedint';
    return 'long';
  }
  if (Array.isArray(value)) return 'array';
  return 'table';
}

/** The routing keys a publish carries: its own, then those of its `CC` and `BCC` headers. */
export function senderSelectedKeys(headers: Record<string, unknown>, name: 'CC' | 'BCC'): string[] {
  const keys = headers[name];
  return Array.isArray(keys) ? keys.map(String) : [];
}

/**
 * The properties a consumer receives for a publish made with amqplib's `options`: amqplib's own
 * mapping (persistent → deliveryMode, CC/BCC into the headers, expiration as a string, headers
 * always a table) followed by the encode/decode round trip.
 */
export function publishedProperties(options: Options.Publish = {}): MessageProperties {
  const headers = wireTable(options.headers);
  const cc = options.CC === undefined ? undefined : ([] as unknown[]).concat(options.CC).map(String);
  const bcc = options.BCC === undefined ? undefined : ([] as unknown[]).concat(options.BCC).map(String);
  if (cc) headers.CC = cc;
  if (bcc) headers.BCC = bcc;
  let deliveryMode: number | undefined;
  if (options.persistent !== undefined) deliveryMode = options.persistent ? 2 : 1;
  else if (typeof options.deliveryMode === 'number') deliveryMode = options.deliveryMode;
  else if (options.deliveryMode) deliveryMode = 2;
  return {
    contentType: options.contentType,
    contentEncoding: options.contentEncoding,
    headers,
    deliveryMode,
    priority: options.priority,
    correlationId: options.correlationId,
    replyTo: options.replyTo,
    expiration: options.expiration === undefined ? undefined : String(options.expiration),
    messageId: options.messageId,
    timestamp: options.timestamp,
    type: options.type,
    userId: options.userId,
    appId: options.appId,
    clusterId: undefined,
  };
}

/** A copy of stored properties for one delivery: each consumer may mutate what it receives. */
export function copyProperties(properties: MessageProperties): MessageProperties {
  return { ...properties, headers: wireTable(properties.headers) };
}

import type { ExchangeType } from '../topology/topology.js';
import type { StandardSchemaV1 } from '../validation/standard-schema.js';
import { WarrenConfigurationError } from '../warren.errors.js';

declare const requestType: unique symbol;
declare const replyType: unique symbol;
declare const eventType: unique symbol;

/**
 * A request/reply contract shared by client and server:
 * `const Fibonacci = defineRpc<number, number>('rpc_queue')`. `client.call(Fibonacci, 30)` is
 * then a `Promise<number>`, and `@RpcHandler(Fibonacci)` only accepts a method taking a number
 * and returning a number.
 */
export interface RpcContract<Request, Reply> {
  readonly kind: 'rpc';
  /** The queue the server consumes (and, without an exchange, the routing key on the default exchange). */
  readonly queue: string;
  /** Optionally publish requests to this exchange instead of the default one. */
  readonly exchange?: string;
  readonly exchangeType?: ExchangeType;
  readonly routingKey?: string;
  /** Checks requests at `call()` and again on receipt (any Standard Schema: zod, valibot, ...). */
  readonly schema?: StandardSchemaV1;
  // Phantom fields: they exist for the type checker only.
  readonly [requestType]?: Request;
  readonly [replyType]?: Reply;
}

export function defineRpc<Request, Reply>(
  queue: string,
  options: { exchange?: string; exchangeType?: ExchangeType; routingKey?: string; schema?: StandardSchemaV1 } = {},
): RpcContract<Request, Reply> {
  if (typeof queue !== 'string' || queue === '') {
    throw new WarrenConfigurationError('defineRpc(queue): queue must be a non-empty string');
  }
  if (options.exchange !== undefined && options.routingKey === undefined) {
    throw new WarrenConfigurationError(`defineRpc("${queue}"): an exchange needs a routingKey`);
  }
  return Object.freeze({ kind: 'rpc' as const, queue, ...options });
}

/** An event contract: `const OrderPlaced = defineEvent<Order>('orders', 'order.placed')`. */
export interface EventContract<Payload> {
  readonly kind: 'event';
  readonly exchange: string;
  readonly routingKey: string;
  readonly exchangeType?: ExchangeType;
  /** Checks payloads at `publish()` and again on receipt. */
  readonly schema?: StandardSchemaV1;
  readonly [eventType]?: Payload;
}

export function defineEvent<Payload>(
  exchange: string,
  routingKey: string,
  options: { exchangeType?: ExchangeType; schema?: StandardSchemaV1 } = {},
): EventContract<Payload> {
  if (typeof exchange !== 'string' || exchange === '') {
    throw new WarrenConfigurationError('defineEvent(exchange, routingKey): exchange must be a non-empty string');
  }
  if (typeof routingKey !== 'string') {
    throw new WarrenConfigurationError(`defineEvent("${exchange}"): routingKey must be a string`);
  }
  return Object.freeze({ kind: 'event' as const, exchange, routingKey, ...options });
}

export function isRpcContract(value: unknown): value is RpcContract<unknown, unknown> {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'rpc';
}

export function isEventContract(value: unknown): value is EventContract<unknown> {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'event';
}

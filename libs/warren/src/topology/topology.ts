/**
 * The one topology model every declaration goes through: decorators, runtime subscriptions and
 * module options all end up as these records before anything is sent to the broker.
 */
import type { ExchangeType, StreamOffset } from './amqp-rules.js';
import type { BatchSettings } from './batch.js';

// Part of the model's vocabulary, so users of the model need not know where RabbitMQ's rules live.
export type { ExchangeType };

export interface ExchangeDeclaration {
  name: string;
  type: ExchangeType;
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  arguments?: Record<string, unknown>;
}

export interface QueueDeclaration {
  /** Empty for a server-named queue (RabbitMQ picks an `amq.gen-…` name at each declaration). */
  name: string;
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  arguments?: Record<string, unknown>;
}

export interface BindingDeclaration {
  exchange: string;
  queue: string;
  routingKey: string;
  arguments?: Record<string, unknown>;
}

/**
 * An exchange-to-exchange binding: what `source` routes with `routingKey` (by its own type) goes
 * on to `destination`, which routes it again by its own bindings.
 */
export interface ExchangeBindingDeclaration {
  source: string;
  destination: string;
  /** Matched by the source's type; ignored by fanout and headers sources. Default ''. */
  routingKey?: string;
  /** Headers sources: the headers to match and `x-match`. */
  arguments?: Record<string, unknown>;
}

/** Everything one consumer needs on its channel, in declaration order. */
export interface ConsumerTopology {
  exchanges: Required<ExchangeDeclaration>[];
  /** What the consumer's failure policy needs (retry exchanges, queues and bindings, dead-letter queue). */
  extraExchanges: Required<ExchangeDeclaration>[];
  extraQueues: Required<QueueDeclaration>[];
  extraBindings: Required<BindingDeclaration>[];
  /** Bindings into the consumer's exchange from others (`@Subscribe(…, { from })`), after `exchanges`. */
  exchangeBindings?: Required<ExchangeBindingDeclaration>[];
  queue: Required<QueueDeclaration>;
  /** Bindings of `queue`; their `queue` field is ignored for server-named queues (the live name is used). */
  bindings: Required<BindingDeclaration>[];
  prefetch: number;
  /** Handler invocations at once; 0 when the prefetch alone bounds them (no limiter). */
  concurrency: number;
  /** Set for a batch handler: its handler receives up to `size` deliveries at once. */
  batch?: BatchSettings;
  /** Set when `queue` is a stream: where a consumer with no stored offset starts reading. */
  stream?: { offset: StreamOffset };
}

export function normalizeExchange(e: ExchangeDeclaration): Required<ExchangeDeclaration> {
  return {
    name: e.name,
    type: e.type,
    durable: e.durable ?? true,
    autoDelete: e.autoDelete ?? false,
    internal: e.internal ?? false,
    arguments: e.arguments ?? {},
  };
}

export function normalizeQueue(q: QueueDeclaration): Required<QueueDeclaration> {
  const serverNamed = q.name === '';
  return {
    name: q.name,
    // A server-named queue is a temporary queue: it lives as long as its connection.
    durable: q.durable ?? !serverNamed,
    exclusive: q.exclusive ?? serverNamed,
    autoDelete: q.autoDelete ?? serverNamed,
    arguments: q.arguments ?? {},
  };
}

export function normalizeBinding(b: BindingDeclaration): Required<BindingDeclaration> {
  return { exchange: b.exchange, queue: b.queue, routingKey: b.routingKey, arguments: b.arguments ?? {} };
}

export function normalizeExchangeBinding(b: ExchangeBindingDeclaration): Required<ExchangeBindingDeclaration> {
  return {
    source: b.source,
    destination: b.destination,
    routingKey: b.routingKey ?? '',
    arguments: b.arguments ?? {},
  };
}

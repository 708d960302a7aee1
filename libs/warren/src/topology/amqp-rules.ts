import { describeValue } from '../validation/describe-value.js';

/**
 * RabbitMQ's own rules, written once. Warren checks declarations against them before anything
 * reaches the broker, because the broker's answer to a breach is a closed channel that names
 * neither the handler nor the option at fault. The decorators, the topology builder, the failure
 * policy and the in-memory broker all read them from here.
 */

export const EXCHANGE_TYPES = ['direct', 'fanout', 'topic', 'headers'] as const;
export type ExchangeType = (typeof EXCHANGE_TYPES)[number];

export function isExchangeType(value: unknown): value is ExchangeType {
  return (EXCHANGE_TYPES as readonly unknown[]).includes(value);
}

/** Names starting with it belong to the broker: its built-in exchanges, its server-named queues. */
export const RESERVED_PREFIX = 'amq.';

export function isReservedName(name: string): boolean {
  return name.startsWith(RESERVED_PREFIX);
}

/** The exchanges every vhost has from its creation; they can be bound to but never declared or deleted. */
export const BUILT_IN_EXCHANGES: ReadonlyMap<string, ExchangeType> = new Map<string, ExchangeType>([
  ['amq.direct', 'direct'],
  ['amq.fanout', 'fanout'],
  ['amq.topic', 'topic'],
  ['amq.headers', 'headers'],
  ['amq.match', 'headers'],
]);

/** The default exchange ("") and the `amq.*` ones: RabbitMQ creates them, nobody declares them. */
export function isPredeclaredExchange(name: string): boolean {
  return name === '' || isReservedName(name);
}

/** AMQP 0-9-1 short strings: routing keys, binding keys, queue and exchange names. */
export const MAX_SHORT_STRING_BYTES = 255;

/** `basic.qos` carries the prefetch count in 16 bits; 0 means no limit. */
export const MAX_PREFETCH = 65535;

/** Why `value` cannot be a consumer's prefetch, or null when it can. */
export function prefetchProblem(value: unknown): string | null {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_PREFETCH) return null;
  return `prefetch must be an integer from 0 to ${MAX_PREFETCH}, got ${describeValue(value)}`;
}

/** The queue types Warren declares (RabbitMQ's streams are not consumed the same way). */
export const QUEUE_TYPES = ['classic', 'quorum'] as const;
export type QueueType = (typeof QUEUE_TYPES)[number];

/** The settings of a queue that its type constrains, as a caller gave them. */
export interface QueueTypeSettings {
  queueType?: unknown;
  deliveryLimit?: unknown;
  durable?: unknown;
  exclusive?: unknown;
}

/** Why RabbitMQ would refuse a queue with these settings, or null when it would not. */
export function queueTypeProblem(settings: QueueTypeSettings): string | null {
  const { queueType, deliveryLimit } = settings;
  if (queueType !== undefined && !(QUEUE_TYPES as readonly unknown[]).includes(queueType)) {
    return `queueType must be ${QUEUE_TYPES.map((t) => `"${t}"`).join(' or ')}, got ${describeValue(queueType)}`;
  }
  if (deliveryLimit !== undefined) {
    // Only quorum queues count a message's deliveries: elsewhere the limit would silently not apply.
    if (queueType !== 'quorum') return 'deliveryLimit needs queueType "quorum"';
    if (typeof deliveryLimit !== 'number' || !Number.isInteger(deliveryLimit) || deliveryLimit < 1) {
      return `deliveryLimit must be a positive integer, got ${describeValue(deliveryLimit)}`;
    }
  }
  if (queueType === 'quorum' && (settings.durable === false || settings.exclusive)) {
    return 'quorum queues are durable and never exclusive';
  }
  return null;
}

/** The queue arguments that select a queue type and its delivery limit. */
export function queueTypeArguments(queueType?: QueueType, deliveryLimit?: number): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  if (queueType !== undefined) args['x-queue-type'] = queueType;
  if (deliveryLimit !== undefined) args['x-delivery-limit'] = deliveryLimit;
  return args;
}

/** Whether the broker itself dead-letters a message of this queue after some number of deliveries. */
export function hasDeliveryLimit(queueArguments: Record<string, unknown>): boolean {
  return queueArguments['x-delivery-limit'] !== undefined;
}

/** The queue arguments that send what the broker dead-letters to `exchange` with `routingKey`. */
export function deadLetterArguments(exchange: string, routingKey: string): Record<string, unknown> {
  return { 'x-dead-letter-exchange': exchange, 'x-dead-letter-routing-key': routingKey };
}

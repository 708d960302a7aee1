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

/**
 * Why `name` cannot be the source or destination of an exchange-to-exchange binding, or null:
 * RabbitMQ refuses the default exchange (403 ACCESS_REFUSED) and knows no other `amq.*` exchange
 * than its built-in ones.
 */
export function exchangeBindingEndProblem(name: string): string | null {
  if (name === '') return 'the default exchange ("") cannot be bound to another exchange, either way';
  if (isReservedName(name) && !BUILT_IN_EXCHANGES.has(name)) {
    return `exchange "${name}" uses the prefix "${RESERVED_PREFIX}", which RabbitMQ reserves for its built-in exchanges`;
  }
  return null;
}

/** AMQP 0-9-1 short strings: routing keys, binding keys, queue and exchange names. */
export const MAX_SHORT_STRING_BYTES = 255;

/** `basic.qos` carries the prefetch count in 16 bits. */
export const MAX_PREFETCH = 65535;

/**
 * Why `value` cannot be a consumer's prefetch, or null when it can. AMQP reads 0 as no limit at
 * all: the broker would push a whole backlog into the process's memory at once (and RabbitMQ
 * refuses it for a stream). Warren refuses it; `concurrency` is what limits the handlers at work.
 */
export function prefetchProblem(value: unknown): string | null {
  if (value === 0) {
    return (
      `prefetch 0 is no limit at all (the broker would send the whole queue to this consumer at once); ` +
      `give a limit from 1 to ${MAX_PREFETCH}`
    );
  }
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_PREFETCH) return null;
  return `prefetch must be an integer from 1 to ${MAX_PREFETCH}, got ${describeValue(value)}`;
}

/** The queue types Warren declares; `classic` is RabbitMQ's default. */
export const QUEUE_TYPES = ['classic', 'quorum', 'stream'] as const;
export type QueueType = (typeof QUEUE_TYPES)[number];

/** What a queue at its `x-max-length`/`x-max-length-bytes` does with one more message. */
export const OVERFLOW_BEHAVIOURS = ['drop-head', 'reject-publish', 'reject-publish-dlx'] as const;
export type Overflow = (typeof OVERFLOW_BEHAVIOURS)[number];

/** The queue arguments users reach for, as typed options. Each is checked against the queue's type. */
export interface TypedQueueOptions {
  /** `quorum` (replicated, durable), `stream` (an append-only log read from an offset), or `classic` (default). */
  queueType?: QueueType;
  /**
   * Quorum queues: deliveries of one message before the broker gives up on it and dead-letters it
   * (to the handler's dead-letter queue, `<queue>.dlq` unless `failure` names another, or to its
   * `failure.deadLetterExchange`). Bounds the `requeue` failure mode.
   */
  deliveryLimit?: number;
  /** Classic and quorum queues: one consumer at a time gets the deliveries, the others wait their turn. */
  singleActiveConsumer?: boolean;
  /** Classic and quorum queues: most messages held; beyond, `overflow` decides. */
  maxLength?: number;
  /** Most bytes of message bodies held; beyond, `overflow` decides (a stream drops its oldest segments). */
  maxLengthBytes?: number;
  /** Classic and quorum queues, with a maximum length: `drop-head` (default), `reject-publish`, `reject-publish-dlx` (classic only). */
  overflow?: Overflow;
  /** Classic and quorum queues: milliseconds a message may wait in the queue. */
  messageTtl?: number;
  /** Classic queues: the highest priority a message may carry, 1 to 255 (RabbitMQ advises 10 at most). */
  maxPriority?: number;
  /** Streams: how long a message is kept, e.g. `7D`, `12h`, `30m` (units Y, M, D, h, m, s). */
  maxAge?: string;
  /** Streams: size of the segment files, in bytes. */
  maxSegmentSize?: number;
}

type TypedOption = Exclude<keyof TypedQueueOptions, 'queueType'>;

interface OptionRule {
  argument: string;
  /** The queue types RabbitMQ honours it on; anywhere else it is refused, or ignored without a word. */
  types: readonly QueueType[];
  /** Why a value cannot be this option's, or null. */
  problem: (value: unknown) => string | null;
}

const wholeNumber =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (value: unknown): string | null =>
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
      ? null
      : `must be ${max === Number.MAX_SAFE_INTEGER ? `a whole number of at least ${min}` : `a whole number from ${min} to ${max}`}, got ${describeValue(value)}`;

/** RabbitMQ's units of `x-max-age`: years, months, days, hours, minutes, seconds. */
const MAX_AGE = /^[1-9]\d*[YMDhms]$/;

/** The highest `x-max-priority` RabbitMQ accepts. */
export const MAX_PRIORITY = 255;

const OPTION_RULES: Record<TypedOption, OptionRule> = {
  deliveryLimit: { argument: 'x-delivery-limit', types: ['quorum'], problem: wholeNumber(1) },
  singleActiveConsumer: {
    argument: 'x-single-active-consumer',
    types: ['classic', 'quorum'],
    problem: (v) => (typeof v === 'boolean' ? null : `must be true or false, got ${describeValue(v)}`),
  },
  maxLength: { argument: 'x-max-length', types: ['classic', 'quorum'], problem: wholeNumber(0) },
  maxLengthBytes: { argument: 'x-max-length-bytes', types: ['classic', 'quorum', 'stream'], problem: wholeNumber(0) },
  overflow: {
    argument: 'x-overflow',
    types: ['classic', 'quorum'],
    problem: (v) =>
      (OVERFLOW_BEHAVIOURS as readonly unknown[]).includes(v)
        ? null
        : `must be ${OVERFLOW_BEHAVIOURS.map((o) => `"${o}"`).join(', ')}, got ${describeValue(v)}`,
  },
  messageTtl: { argument: 'x-message-ttl', types: ['classic', 'quorum'], problem: wholeNumber(0) },
  maxPriority: { argument: 'x-max-priority', types: ['classic'], problem: wholeNumber(1, MAX_PRIORITY) },
  maxAge: {
    argument: 'x-max-age',
    types: ['stream'],
    problem: (v) =>
      typeof v === 'string' && MAX_AGE.test(v)
        ? null
        : `must be a number and a unit (Y, M, D, h, m, s), e.g. "7D", got ${describeValue(v)}`,
  },
  maxSegmentSize: { argument: 'x-stream-max-segment-size-bytes', types: ['stream'], problem: wholeNumber(1) },
};

const TYPED_OPTIONS = Object.keys(OPTION_RULES) as TypedOption[];

/** Every key of `TypedQueueOptions`. */
export const TYPED_QUEUE_OPTION_KEYS: readonly (keyof TypedQueueOptions)[] = ['queueType', ...TYPED_OPTIONS];

/** The settings of a queue that its type constrains, as a caller gave them. */
export interface QueueTypeSettings extends Partial<Record<keyof TypedQueueOptions, unknown>> {
  name?: unknown;
  durable?: unknown;
  exclusive?: unknown;
  autoDelete?: unknown;
  arguments?: unknown;
}

/**
 * Why RabbitMQ would refuse a queue with these settings (or silently ignore one of them), or null
 * when it would not. Without a `queueType` (and no `x-queue-type` argument) only the values are
 * checked unless `typeKnown`: a decorator does not know yet whether the module's default type
 * applies; the topology builder, which does, passes the type it settled on.
 */
export function queueTypeProblem(settings: QueueTypeSettings, typeKnown = false): string | null {
  const { queueType } = settings;
  if (queueType !== undefined && !(QUEUE_TYPES as readonly unknown[]).includes(queueType)) {
    return `queueType must be ${QUEUE_TYPES.map((t) => `"${t}"`).join(', ')}, got ${describeValue(queueType)}`;
  }
  const args = isPlainTable(settings.arguments) ? settings.arguments : {};
  const rawType = args['x-queue-type'];
  if (queueType !== undefined && rawType !== undefined && rawType !== queueType) {
    return `queueType "${String(queueType)}" contradicts arguments["x-queue-type"] ${describeValue(rawType)}`;
  }
  for (const option of TYPED_OPTIONS) {
    const value = settings[option];
    if (value === undefined) continue;
    const rule = OPTION_RULES[option];
    const problem = rule.problem(value);
    if (problem) return `${option} ${problem}`;
    if (args[rule.argument] !== undefined) {
      return `${option} and arguments["${rule.argument}"] are both set; keep one`;
    }
  }
  const known = queueType ?? rawType;
  if (known === undefined && !typeKnown) return null;
  const type = (known ?? 'classic') as QueueType;
  for (const option of TYPED_OPTIONS) {
    const { types } = OPTION_RULES[option];
    if (settings[option] === undefined || types.includes(type)) continue;
    return types.length === 1
      ? `${option} needs queueType "${types[0]}"`
      : `${option} cannot be used on a ${type} queue (only on ${types.join(' or ')} queues)`;
  }
  if (settings.overflow !== undefined) {
    if (type === 'quorum' && settings.overflow === 'reject-publish-dlx') {
      return 'overflow "reject-publish-dlx" is for classic queues; a quorum queue takes "drop-head" or "reject-publish"';
    }
    const limited = [settings.maxLength, settings.maxLengthBytes, args['x-max-length'], args['x-max-length-bytes']];
    if (limited.every((v) => v === undefined)) return 'overflow needs maxLength or maxLengthBytes';
  }
  if (type === 'quorum' || type === 'stream') {
    // RabbitMQ replicates these types across nodes: a queue of one connection, or one that vanishes
    // with its last consumer, cannot be one.
    if (settings.name === '') return `${type} queues need a name (a server-named queue is temporary)`;
    if (settings.durable === false) return `${type} queues are always durable: remove durable: false`;
    if (settings.exclusive === true) return `${type} queues cannot be exclusive`;
    if (settings.autoDelete === true) return `${type} queues cannot be auto-delete`;
  }
  return null;
}

/** The queue arguments of a queue type and of the typed options given. */
export function queueTypeArguments(options: TypedQueueOptions): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  if (options.queueType !== undefined) args['x-queue-type'] = options.queueType;
  for (const option of TYPED_OPTIONS) {
    const value = options[option];
    if (value !== undefined) args[OPTION_RULES[option].argument] = value;
  }
  return args;
}

/** A queue's type from its arguments: RabbitMQ's classic queue when they name none. */
export function queueTypeOf(queueArguments: Record<string, unknown>): QueueType {
  const type = queueArguments['x-queue-type'];
  return (QUEUE_TYPES as readonly unknown[]).includes(type) ? (type as QueueType) : 'classic';
}

function isPlainTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Where a stream consumer starts reading: the stream's first message still kept, its last chunk,
 * the next message written, an offset, or the first message written at or after a time.
 */
export type StreamOffset = 'first' | 'last' | 'next' | number | Date;

/** Why `offset` cannot be a stream consumer's starting point, or null when it can. */
export function streamOffsetProblem(offset: unknown): string | null {
  if (offset === 'first' || offset === 'last' || offset === 'next') return null;
  if (typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0) return null;
  if (offset instanceof Date && !Number.isNaN(offset.getTime())) return null;
  return `offset must be "first", "last", "next", an offset (a whole number of 0 or more) or a Date, got ${describeValue(offset)}`;
}

/** The consumer argument `x-stream-offset` for `offset` (a Date goes as an AMQP timestamp, in seconds). */
export function streamOffsetArgument(offset: StreamOffset): unknown {
  return offset instanceof Date ? { '!': 'timestamp', value: Math.floor(offset.getTime() / 1000) } : offset;
}

/** Whether the broker itself dead-letters a message of this queue after some number of deliveries. */
export function hasDeliveryLimit(queueArguments: Record<string, unknown>): boolean {
  return queueArguments['x-delivery-limit'] !== undefined;
}

/** The queue arguments that send what the broker dead-letters to `exchange` with `routingKey`. */
export function deadLetterArguments(exchange: string, routingKey: string): Record<string, unknown> {
  return { 'x-dead-letter-exchange': exchange, 'x-dead-letter-routing-key': routingKey };
}

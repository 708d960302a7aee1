import { BUILT_IN_EXCHANGES, EXCHANGE_TYPES, type ExchangeType, isExchangeType } from '../topology/amqp-rules.js';
import type { BatchOptions } from '../topology/batch.js';
import type { ConsumerSpec, ExchangeSource } from '../topology/topology-builder.js';
import { describeValue } from '../validation/describe-value.js';
import { WarrenDecoratorError } from '../warren.errors.js';
import type { FailureMode, FailureOptions } from '../topology/failure-policy.js';
import { type EventContract, isEventContract } from '../contracts/contracts.js';
import type { ContractMethodDecorator } from './contract-method.js';
import { configuredMetadata, type ConfiguredSource, isConfiguredSource } from './configured-metadata.js';
import { addHandlerMetadata, type ConnectionOption, decoratorWho, methodName } from './handler-metadata.js';
import {
  requireBatch,
  requireConcurrency,
  requireConnection,
  requireName,
  requireOptions,
  requirePrefetch,
} from './option-guards.js';
import { queueSpec, type QueueOptions } from './queue-options.js';

/**
 * An exchange bound into the handler's exchange (an exchange-to-exchange binding): what it routes
 * with `keys` reaches the handler's exchange, and through its bindings the handler.
 */
export interface SubscribeFrom {
  exchange: string;
  /** Its type, as Warren declares it. Default `topic`; RabbitMQ's built-in `amq.*` exchanges keep theirs. */
  exchangeType?: ExchangeType;
  /** Binding keys on it; required for topic and direct sources, ignored by fanout and headers ones. */
  keys?: string | string[];
  /** Headers sources: the headers a message must carry. */
  headers?: Record<string, unknown>;
  /** Headers sources: whether all headers must match or any one. Default `all`. */
  match?: 'all' | 'any';
  /** Its settings when Warren declares it: durable (default true), autoDelete, internal, arguments. */
  exchangeOptions?: SubscribeOptions['exchangeOptions'];
}

export interface SubscribeOptions extends QueueOptions, ConnectionOption {
  /** Exchange type. Default `topic`, which acts as `direct` for keys without wildcards. */
  exchangeType?: ExchangeType;
  /** @deprecated The older name of `exchangeType`, the one name of the exchange type in every API; kept for one release. */
  type?: ExchangeType;
  /** Exchange settings: durable (default true), autoDelete, internal, arguments. */
  exchangeOptions?: {
    durable?: boolean;
    autoDelete?: boolean;
    internal?: boolean;
    arguments?: Record<string, unknown>;
  };
  /**
   * A named, durable queue shared by every instance of the app (competing consumers). Without it
   * each instance gets its own exclusive server-named queue, so every instance sees every message.
   */
  queue?: string;
  /** What happens when the handler throws. Default: retry then dead-letter for a named queue, drop for a temporary one. */
  failure?: FailureMode | FailureOptions;
  /** Headers exchanges: the headers a message must carry. */
  headers?: Record<string, unknown>;
  /** Headers exchanges: whether all headers must match or any one. Default `all`. */
  match?: 'all' | 'any';
  /** Unacknowledged deliveries this handler holds at once. Default: the module's `prefetch`. */
  prefetch?: number;
  /**
   * Handler invocations at once on this instance, while `prefetch` keeps more deliveries
   * buffered. Default: the module's `concurrency`, else as many as the prefetch. 1 handles the
   * queue in order.
   */
  concurrency?: number;
  /**
   * Batch handler: the method receives `(payloads, contexts)`, up to `size` messages at once, or
   * fewer once `timeoutMs` (default 50) has passed since the first. See the guide's "Batch handlers".
   */
  batch?: BatchOptions;
  /**
   * Service queues (several handlers naming one `queue`): this handler gets the messages no other
   * handler of the queue is bound for, and its bindings may overlap theirs. At most one per queue.
   */
  fallback?: boolean;
  /**
   * Exchanges to bind into this handler's exchange (exchange-to-exchange bindings), declared with
   * it: `@Subscribe('audit', '#', { from: { exchange: 'orders', keys: 'order.*' } })`.
   */
  from?: SubscribeFrom | SubscribeFrom[];
}

/** `exchangeType`, or its older name `type`: both at once must agree. */
function exchangeTypeOf(who: string, options: SubscribeOptions): ExchangeType {
  const { exchangeType, type } = options;
  if (exchangeType !== undefined && type !== undefined && exchangeType !== type) {
    throw new WarrenDecoratorError(
      `${who}: exchangeType ${describeValue(exchangeType)} and type ${describeValue(type)} disagree; ` +
        `type is the older name of exchangeType: give exchangeType only`,
    );
  }
  const chosen = exchangeType ?? type ?? 'topic';
  if (!isExchangeType(chosen)) {
    throw new WarrenDecoratorError(
      `${who}: exchangeType must be one of ${EXCHANGE_TYPES.join(', ')}, got ${describeValue(chosen)}`,
    );
  }
  return chosen;
}

/** The binding keys of a key-or-keys option, checked to be strings, once each. */
function keyList(who: string, raw: unknown): string[] {
  const keys = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  for (const key of keys) {
    if (typeof key !== 'string') {
      throw new WarrenDecoratorError(`${who}: binding keys must be strings, got ${describeValue(key)}`);
    }
  }
  return [...new Set(keys as string[])];
}

function headersArguments(who: string, headers: unknown, rawMatch: unknown): Record<string, unknown> {
  const table = requireOptions(who, headers);
  const match = rawMatch ?? 'all';
  if (match !== 'all' && match !== 'any') {
    throw new WarrenDecoratorError(`${who}: match must be "all" or "any", got ${describeValue(match)}`);
  }
  return { ...table, 'x-match': match };
}

function fromSpecs(who: string, raw: unknown): ExchangeSource[] {
  const list = Array.isArray(raw) ? raw : [raw];
  return list.map((entry: unknown, i) => {
    const at = Array.isArray(raw) ? `${who}: from[${i}]` : `${who}: from`;
    const from = requireOptions(at, entry) as unknown as SubscribeFrom;
    const name = requireName(at, 'exchange', from.exchange);
    const type = from.exchangeType ?? BUILT_IN_EXCHANGES.get(name) ?? 'topic';
    if (!isExchangeType(type)) {
      throw new WarrenDecoratorError(
        `${at}: exchangeType must be one of ${EXCHANGE_TYPES.join(', ')}, got ${describeValue(type)}`,
      );
    }
    const keys = keyList(at, from.keys);
    if ((type === 'direct' || type === 'topic') && keys.length === 0) {
      throw new WarrenDecoratorError(`${at}: a ${type} exchange needs at least one binding key (keys)`);
    }
    return {
      exchange: { name, type, ...from.exchangeOptions },
      keys,
      ...(type === 'headers' ? { arguments: headersArguments(at, from.headers, from.match) } : {}),
    };
  });
}

/**
 * Builds the consumer spec of a subscription; shared by the decorator, runtime subscriptions and
 * `@EventPattern` handlers, each passing the `who` its errors name (see decoratorWho).
 */
export function subscribeSpec(who: string, exchange: unknown, bindingKeys: unknown, rawOptions: unknown): ConsumerSpec {
  const name = requireName(who, 'exchange', exchange);
  const options = requireOptions(who, rawOptions) as SubscribeOptions;
  const type = exchangeTypeOf(who, options);
  const keys = bindingKeys === undefined ? [] : Array.isArray(bindingKeys) ? bindingKeys : [bindingKeys];
  for (const key of keys) {
    if (typeof key !== 'string') {
      throw new WarrenDecoratorError(`${who}: binding keys must be strings, got ${describeValue(key)}`);
    }
  }
  if ((type === 'direct' || type === 'topic') && keys.length === 0) {
    throw new WarrenDecoratorError(`${who}: a ${type} exchange needs at least one binding key`);
  }
  const queue = options.queue === undefined ? '' : requireName(who, 'options.queue', options.queue);
  let bindingArguments: Record<string, unknown> | undefined;
  if (type === 'headers') {
    const headers = requireOptions(who, options.headers);
    const match = options.match ?? 'all';
    if (match !== 'all' && match !== 'any') {
      throw new WarrenDecoratorError(`${who}: match must be "all" or "any", got ${describeValue(match)}`);
    }
    bindingArguments = { ...headers, 'x-match': match };
  }
  if (options.fallback !== undefined && typeof options.fallback !== 'boolean') {
    throw new WarrenDecoratorError(`${who}: fallback must be true or false, got ${describeValue(options.fallback)}`);
  }
  const sources = options.from === undefined ? undefined : fromSpecs(who, options.from);
  return {
    exchange: { name, type, ...options.exchangeOptions },
    bindingKeys: [...new Set(keys as string[])],
    bindingArguments,
    ...(sources ? { sources } : {}),
    ...queueSpec(who, queue, options),
    prefetch: requirePrefetch(who, options.prefetch),
    concurrency: requireConcurrency(who, options.concurrency),
    ...(options.batch !== undefined && { batch: requireBatch(who, options.batch) }),
    failure: options.failure,
    ...(options.fallback ? { fallback: true } : {}),
  };
}

/**
 * `@Subscribe({ config: 'billing' })`: the exchange, binding keys and options from the module
 * options' `handlers.billing`, over these.
 */
export interface ConfiguredSubscribe extends ConfiguredSource, SubscribeOptions {
  exchange?: string;
  bindingKeys?: string | string[];
}

/**
 * Subscribes a provider method to an exchange: `@Subscribe('topic_logs', '*.orange.*')`.
 * The exchange, the queue and its bindings are declared at boot; the method receives
 * `(payload, context)` and the message is acked once it returns (or its promise resolves).
 * `@Subscribe({ config: 'billing' })` takes the exchange, keys and options from configuration at
 * boot (the module options' `handlers.billing`).
 */
/** A batch handler of a contract: the method takes `(payloads: T[], contexts: BatchContext[])`. */
export function Subscribe<T>(
  event: EventContract<T>,
  options: SubscribeOptions & { batch: BatchOptions },
): ContractMethodDecorator<T[]>;
export function Subscribe<T>(event: EventContract<T>, options?: SubscribeOptions): ContractMethodDecorator<T>;
export function Subscribe(
  exchange: string,
  bindingKeys?: string | string[],
  options?: SubscribeOptions,
): MethodDecorator;
/** An exchange whose type ignores binding keys: `@Subscribe('logs', { exchangeType: 'fanout' })`. */
export function Subscribe(exchange: string, options: SubscribeOptions): MethodDecorator;
export function Subscribe(configured: ConfiguredSubscribe): MethodDecorator;
export function Subscribe(
  source: string | EventContract<unknown> | ConfiguredSubscribe,
  keysOrOptions?: string | string[] | SubscribeOptions,
  maybeOptions?: SubscribeOptions,
) {
  return (target: object, key: string | symbol) => {
    if (isConfiguredSource(source)) {
      addHandlerMetadata(target, key, configuredMetadata('subscribe', 'Subscribe', methodName(target, key), source));
      return;
    }
    const who = decoratorWho('Subscribe', methodName(target, key));
    const spec = isEventContract(source)
      ? {
          ...subscribeSpec(who, source.exchange, source.routingKey, {
            ...(source.exchangeType ? { exchangeType: source.exchangeType } : {}),
            ...(keysOrOptions as SubscribeOptions | undefined),
          }),
          schema: source.schema,
        }
      : isOptions(keysOrOptions)
        ? subscribeSpec(who, source, undefined, keysOrOptions)
        : subscribeSpec(who, source, keysOrOptions, maybeOptions);
    const options = isEventContract(source) || isOptions(keysOrOptions) ? keysOrOptions : maybeOptions;
    const connection = requireConnection(who, options);
    const contract = isEventContract(source) ? source : undefined;
    addHandlerMetadata(target, key, { kind: 'subscribe', consumer: spec, connection, contract });
  };
}

/** `@Subscribe('logs', { ... })`: options where the binding keys would be. */
function isOptions(value: unknown): value is SubscribeOptions {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

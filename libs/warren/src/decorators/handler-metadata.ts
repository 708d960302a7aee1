import type { ConsumerSpec } from '../topology/topology-builder.js';
import { WARREN_HANDLER_METADATA } from '../warren.constants.js';
import { WarrenDecoratorError } from '../warren.errors.js';

export type HandlerKind = 'subscribe' | 'consume' | 'rpc';

/** What a handler decorator leaves on its method for the discovery service to find. */
export interface HandlerMetadata {
  kind: HandlerKind;
  consumer: ConsumerSpec;
  /** Extra settings of a handler kind (e.g. RPC error options). */
  extra?: Record<string, unknown>;
  /** The named connection the handler consumes on; the default connection when absent. */
  connection?: string;
}

/** The option every handler decorator takes to choose its connection. */
export interface ConnectionOption {
  /**
   * The named connection (`WarrenModule.forRoot({ name })`) this handler consumes on. Default: the
   * default connection. Naming one the app does not register fails the boot.
   */
  connection?: string;
}

/** Appends a spec to a method; one method may carry several handler decorators. */
export function addHandlerMetadata(target: object, key: string | symbol, metadata: HandlerMetadata): void {
  const existing: HandlerMetadata[] = Reflect.getMetadata(WARREN_HANDLER_METADATA, target, key) ?? [];
  Reflect.defineMetadata(WARREN_HANDLER_METADATA, [...existing, metadata], target, key);
}

export function getHandlerMetadata(target: object, key: string | symbol): HandlerMetadata[] | undefined {
  return Reflect.getMetadata(WARREN_HANDLER_METADATA, target, key);
}

/** `OrdersService.onPlaced`: how every error names a handler. */
export function methodName(target: object, key: string | symbol): string {
  const owner = typeof target === 'function' ? target.name : target.constructor?.name;
  return `${owner ?? 'anonymous'}.${String(key)}`;
}

/** Guards for decorator arguments: a wrong argument fails when the class is defined, naming the method. */
export function requireName(
  decorator: string,
  where: string,
  what: string,
  value: unknown,
  allowEmpty = false,
): string {
  if (typeof value !== 'string' || (!allowEmpty && value === '')) {
    throw new WarrenDecoratorError(
      `@${decorator}() on ${where}: ${what} must be a non-empty string, got ${describe(value)}`,
    );
  }
  return value;
}

export function requireOptions(decorator: string, where: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WarrenDecoratorError(`@${decorator}() on ${where}: options must be an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

export function requireConnection(decorator: string, where: string, options: unknown): string | undefined {
  const value = (options as ConnectionOption | undefined)?.connection;
  return value === undefined ? undefined : requireName(decorator, where, 'options.connection', value);
}

export function requirePrefetch(decorator: string, where: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    throw new WarrenDecoratorError(
      `@${decorator}() on ${where}: prefetch must be an integer from 0 to 65535, got ${describe(value)}`,
    );
  }
  return value;
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : String(value);
}

/** Queue options every handler decorator shares. */
export interface QueueOptions {
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  /** Queue arguments, e.g. `{ 'x-message-ttl': 60000 }`. */
  arguments?: Record<string, unknown>;
  /** `quorum` for a replicated quorum queue (durable, not exclusive). Default: RabbitMQ's classic queue. */
  queueType?: 'classic' | 'quorum';
  /**
   * Quorum queues: deliveries of one message before the broker gives up on it and dead-letters it
   * (to `<queue>.dlq`). Bounds the `requeue` failure mode.
   */
  deliveryLimit?: number;
}

/** The queue declaration a decorator's options describe. */
export function queueDeclaration(decorator: string, where: string, name: string, options: QueueOptions) {
  const args: Record<string, unknown> = { ...options.arguments };
  if (options.queueType !== undefined) {
    if (options.queueType !== 'classic' && options.queueType !== 'quorum') {
      throw new WarrenDecoratorError(
        `@${decorator}() on ${where}: queueType must be "classic" or "quorum", got ${describe(options.queueType)}`,
      );
    }
    args['x-queue-type'] = options.queueType;
  }
  if (options.deliveryLimit !== undefined) {
    if (options.queueType !== 'quorum') {
      throw new WarrenDecoratorError(`@${decorator}() on ${where}: deliveryLimit needs queueType "quorum"`);
    }
    if (!Number.isInteger(options.deliveryLimit) || options.deliveryLimit < 1) {
      throw new WarrenDecoratorError(
        `@${decorator}() on ${where}: deliveryLimit must be a positive integer, got ${describe(options.deliveryLimit)}`,
      );
    }
    args['x-delivery-limit'] = options.deliveryLimit;
    // Where the broker sends what it gives up on; Warren declares that queue with the consumer.
    args['x-dead-letter-exchange'] ??= '';
    args['x-dead-letter-routing-key'] ??= `${name}.dlq`;
  }
  if (options.queueType === 'quorum' && (options.durable === false || options.exclusive)) {
    throw new WarrenDecoratorError(`@${decorator}() on ${where}: quorum queues are durable and never exclusive`);
  }
  return {
    name,
    durable: options.durable,
    exclusive: options.exclusive,
    autoDelete: options.autoDelete,
    arguments: Object.keys(args).length > 0 ? args : undefined,
  };
}

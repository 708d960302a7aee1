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

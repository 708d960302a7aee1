import type { Type } from '@nestjs/common';
import type { Handler } from '../consumer/handler-invoker.js';
import type { HandlerMetadata } from './handler-metadata.js';

/**
 * A provider that wraps a decorated method's handler (the inbox of `nestjs-warren/outbox` runs it
 * in a database transaction). A decorator names its class with `addHandlerWrapper()`; discovery
 * resolves it from the app and wraps the handler, inside Warren's ack and reply and outside Nest's
 * enhancers, so what the wrapper returns is what is replied.
 */
export interface HandlerWrapper {
  wrap(handler: Handler, method: WrappedMethod): Handler;
}

export interface WrappedMethod {
  /** `OrdersService.onPlaced`. */
  label: string;
  /** The method's handler decorators. */
  metadata: readonly HandlerMetadata[];
  /** What the wrapping decorator was given. */
  options: unknown;
}

export interface HandlerWrapperEntry {
  wrapper: Type<HandlerWrapper>;
  /** The decorator that asked, for errors: `@Idempotent()`. */
  decorator: string;
  options: unknown;
}

const WRAPPERS = Symbol('warren:handler-wrappers');

/** Records that discovery must wrap this method's handler with `wrapper`; the first added is outermost. */
export function addHandlerWrapper(target: object, method: string | symbol, entry: HandlerWrapperEntry): void {
  const existing = (Reflect.getMetadata(WRAPPERS, target, method) as HandlerWrapperEntry[] | undefined) ?? [];
  Reflect.defineMetadata(WRAPPERS, [...existing, entry], target, method);
}

export function getHandlerWrappers(target: object, method: string | symbol): readonly HandlerWrapperEntry[] {
  return (Reflect.getMetadata(WRAPPERS, target, method) as HandlerWrapperEntry[] | undefined) ?? [];
}

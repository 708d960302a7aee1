import type { EventContract, RpcContract } from '../contracts/contracts.js';
import type { ConsumerSpec } from '../topology/topology-builder.js';
import { WARREN_HANDLER_METADATA } from '../warren.constants.js';

export type HandlerKind = 'subscribe' | 'consume' | 'rpc';

/** What a handler decorator leaves on its method for the discovery service to find. */
export interface HandlerMetadata {
  kind: HandlerKind;
  consumer: ConsumerSpec;
  /** Extra settings of a handler kind (e.g. RPC error options). */
  extra?: Record<string, unknown>;
  /** The named connection the handler consumes on; the default connection when absent. */
  connection?: string;
  /** The contract the decorator was given, if any: what a topology read-out and AsyncAPI name the messages by. */
  contract?: EventContract<unknown> | RpcContract<unknown, unknown>;
}

/**
 * What `@Subscribe({ config: key })` and its like leave: the handler's names and options come from
 * the module options' `handlers[key]` at boot, over the decorator's own `defaults`, and discovery
 * turns it into a HandlerMetadata then (see configured-handler.ts).
 */
export interface ConfiguredHandlerMetadata {
  kind: HandlerKind;
  /** The key of the module options' `handlers` entry. */
  config: string;
  /** What the decorator gives besides the key; the configuration's entry overrides it field by field. */
  defaults: Record<string, unknown>;
  connection?: string;
}

/** What a method carries: a handler complete at class definition, or one completed by configuration. */
export type DecoratedHandler = HandlerMetadata | ConfiguredHandlerMetadata;

export function isConfigured(metadata: DecoratedHandler): metadata is ConfiguredHandlerMetadata {
  return 'config' in metadata;
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
export function addHandlerMetadata(target: object, key: string | symbol, metadata: DecoratedHandler): void {
  const existing: DecoratedHandler[] = Reflect.getMetadata(WARREN_HANDLER_METADATA, target, key) ?? [];
  Reflect.defineMetadata(WARREN_HANDLER_METADATA, [...existing, metadata], target, key);
}

export function getHandlerMetadata(target: object, key: string | symbol): DecoratedHandler[] | undefined {
  return Reflect.getMetadata(WARREN_HANDLER_METADATA, target, key);
}

/** `OrdersService.onPlaced`: how every error names a handler. */
export function methodName(target: object, key: string | symbol): string {
  const owner = typeof target === 'function' ? target.name : target.constructor?.name;
  return `${owner ?? 'anonymous'}.${String(key)}`;
}

/**
 * `@Subscribe() on OrdersService.onPlaced`: who an argument error blames. The spec builders take
 * it ready-made, so runtime subscriptions and the microservices transport, which share them, name
 * their own API instead of a decorator the user never wrote.
 */
export function decoratorWho(decorator: string, where: string): string {
  return `@${decorator}() on ${where}`;
}

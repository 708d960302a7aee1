import { Inject, type InjectionToken, type Type } from '@nestjs/common';
import { WarrenConnection } from './connection/warren-connection.js';
import { HandlerFactory } from './discovery/handler-factory.js';
import { WarrenExplorer } from './discovery/warren.explorer.js';
import { WarrenHealthIndicator } from './health/warren-health.indicator.js';
import { Publisher } from './publisher/publisher.js';
import { ConsumerLifecycle } from './registry/consumer-lifecycle.js';
import { ConsumerRegistry } from './registry/consumer-registry.js';
import { DeliveryObservers } from './registry/delivery-observers.js';
import { HandlerRegistrar } from './registry/handler-registrar.js';
import { TopologyRegistry } from './registry/topology-registry.js';
import { RpcClient } from './rpc/rpc-client.js';
import { RpcResponder } from './rpc/rpc-responder.js';
import { DEFAULT_CONNECTION, WARREN_MODULE_OPTIONS } from './warren.options.js';
import { WarrenConfigurationError } from './warren.errors.js';

/**
 * What a named connection's tokens are built from. Spelled out rather than taken from `Class.name`,
 * which a bundler's minifier may shorten to the same letter for two classes.
 */
const TOKEN_KEYS = new Map<unknown, string>([
  [WARREN_MODULE_OPTIONS, 'options'],
  [WarrenConnection, 'WarrenConnection'],
  [Publisher, 'Publisher'],
  [RpcClient, 'RpcClient'],
  [ConsumerRegistry, 'ConsumerRegistry'],
  [WarrenHealthIndicator, 'WarrenHealthIndicator'],
  [RpcResponder, 'RpcResponder'],
  [TopologyRegistry, 'TopologyRegistry'],
  [DeliveryObservers, 'DeliveryObservers'],
  [ConsumerLifecycle, 'ConsumerLifecycle'],
  [HandlerRegistrar, 'HandlerRegistrar'],
  [HandlerFactory, 'HandlerFactory'],
  [WarrenExplorer, 'WarrenExplorer'],
]);

/**
 * The injection token of one of a connection's parts: the class itself for the default
 * connection (so `app.get(Publisher)` and constructor injection by type keep working), a string
 * for a named one: `app.get(getWarrenToken(Publisher, 'billing'))`.
 */
export function getWarrenToken<T>(part: Type<T>, connection?: string): Type<T> | string;
export function getWarrenToken(part: typeof WARREN_MODULE_OPTIONS, connection?: string): symbol | string;
export function getWarrenToken(part: Type<unknown> | symbol, connection = DEFAULT_CONNECTION): InjectionToken {
  if (typeof connection !== 'string' || connection === '') {
    throw new WarrenConfigurationError(
      `getWarrenToken(): the connection name must be a non-empty string, got ${String(connection)}`,
    );
  }
  return warrenToken(part, connection);
}

/** `getWarrenToken()` without the overloads, for Warren's own wiring. */
export function warrenToken(part: unknown, connection: string): InjectionToken {
  const key = TOKEN_KEYS.get(part);
  if (key === undefined) {
    const name = typeof part === 'function' ? part.name : String(part);
    throw new WarrenConfigurationError(`getWarrenToken(): ${name} is not a part of a Warren connection`);
  }
  return connection === DEFAULT_CONNECTION ? (part as InjectionToken) : `nestjs-warren:${connection}:${key}`;
}

/** Injects the `Publisher` of the connection `name` (the default one without a name). */
export const InjectPublisher = (name?: string): PropertyDecorator & ParameterDecorator =>
  Inject(getWarrenToken(Publisher, name));

/** Injects the `RpcClient` of the connection `name` (the default one without a name). */
export const InjectRpcClient = (name?: string): PropertyDecorator & ParameterDecorator =>
  Inject(getWarrenToken(RpcClient, name));

/** Injects the `ConsumerRegistry` of the connection `name` (the default one without a name). */
export const InjectConsumerRegistry = (name?: string): PropertyDecorator & ParameterDecorator =>
  Inject(getWarrenToken(ConsumerRegistry, name));

import { describeValue } from '../validation/describe-value.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import type { WarrenHandlerConfig } from '../warren.options.js';
import { consumeSpec } from './consume.decorator.js';
import type { ConfiguredHandlerMetadata, HandlerKind, HandlerMetadata } from './handler-metadata.js';
import { requireOptions } from './option-guards.js';
import { rpcExtra, rpcSpec } from './rpc-handler.decorator.js';
import { subscribeSpec } from './subscribe.decorator.js';

const DECORATORS: Record<HandlerKind, string> = { subscribe: 'Subscribe', consume: 'Consume', rpc: 'RpcHandler' };

/** `@Consume({ config: 'jobs' }) on Worker.run`: how errors name a configured handler. */
function whoOf(metadata: ConfiguredHandlerMetadata, label: string): string {
  return `@${DECORATORS[metadata.kind]}({ config: '${metadata.config}' }) on ${label}`;
}

/**
 * Completes a configured handler from the module options' `handlers` of its connection: the entry
 * over the decorator's defaults, then the same checks and spec builders as the decorator's own
 * arguments. A missing entry, or one that tries to move the handler to another connection, fails
 * the boot naming the handler and the key.
 */
export function resolveConfigured(
  metadata: ConfiguredHandlerMetadata,
  label: string,
  handlers: Record<string, WarrenHandlerConfig> | undefined,
  connection: string,
): HandlerMetadata {
  const who = whoOf(metadata, label);
  const entry =
    handlers !== undefined && Object.hasOwn(handlers, metadata.config) ? handlers[metadata.config] : undefined;
  if (entry === undefined) {
    const known = Object.keys(handlers ?? {});
    throw new WarrenConfigurationError(
      `${who}: the module options of the connection "${connection}" have no handlers["${metadata.config}"] ` +
        `(${known.length > 0 ? `they have ${known.map((k) => `"${k}"`).join(', ')}` : 'they have no handlers'}); ` +
        `add it to WarrenModule.forRoot()/forRootAsync()'s options`,
    );
  }
  const own = requireOptions(`${who}: handlers["${metadata.config}"]`, entry);
  if (own.connection !== undefined) {
    throw new WarrenConfigurationError(
      `${who}: handlers["${metadata.config}"] sets connection ${describeValue(own.connection)}, but the decorator ` +
        `chooses the connection (the entry is read from that connection's options)`,
    );
  }
  const merged: Record<string, unknown> = { ...metadata.defaults, ...own };
  const base = { connection: metadata.connection };
  if (metadata.kind === 'subscribe') {
    const { exchange, bindingKeys, ...options } = merged;
    return { ...base, kind: 'subscribe', consumer: subscribeSpec(who, exchange, bindingKeys, options) };
  }
  if (metadata.kind === 'consume') {
    const { queue, ...options } = merged;
    return { ...base, kind: 'consume', consumer: consumeSpec(who, queue, options) };
  }
  const { queue, exchange, routingKey, exchangeType, ...options } = merged;
  return {
    ...base,
    kind: 'rpc',
    consumer: rpcSpec(who, { queue, exchange, routingKey, exchangeType }, options),
    extra: rpcExtra(options),
  };
}

import type { Observable } from 'rxjs';
import { isRpcContract, type RpcContract } from '../contracts/contracts.js';
import { type ExchangeType, isExchangeType } from '../topology/amqp-rules.js';
import type { ConsumerSpec } from '../topology/topology-builder.js';
import { describeValue } from '../validation/describe-value.js';
import { WarrenDecoratorError } from '../warren.errors.js';
import type { ContractMethodDecorator } from './contract-method.js';
import { configuredMetadata, type ConfiguredSource, isConfiguredSource } from './configured-metadata.js';
import { addHandlerMetadata, type ConnectionOption, decoratorWho, methodName } from './handler-metadata.js';
import { requireConnection, requireName, requireOptions, requirePrefetch } from './option-guards.js';
import { queueSpec, type QueueOptions } from './queue-options.js';

export interface RpcHandlerOptions extends QueueOptions, ConnectionOption {
  prefetch?: number;
  /** Send the error's stack trace in error replies. Default false: stacks reveal code paths. */
  exposeErrorStack?: boolean;
}

/** Where requests come from: a queue name, a contract, or a queue bound to an exchange. */
export type RpcSource =
  | string
  | RpcContract<any, any>
  | { queue: string; exchange?: string; routingKey?: string; exchangeType?: ExchangeType };

export interface RpcHandlerExtra {
  exposeErrorStack: boolean;
  [key: string]: unknown;
}

/** `@RpcHandler({ config: 'quotes' })`: the queue and options from the module options' `handlers.quotes`, over these. */
export interface ConfiguredRpcHandler extends ConfiguredSource, RpcHandlerOptions {
  queue?: string;
  exchange?: string;
  routingKey?: string;
  exchangeType?: ExchangeType;
}

/** The settings an RPC handler's replies need besides its consumer. */
export function rpcExtra(options: RpcHandlerOptions | undefined): RpcHandlerExtra {
  return { exposeErrorStack: options?.exposeErrorStack === true };
}

/** Builds the consumer spec of an RPC queue; `who` names the caller in errors (see decoratorWho). */
export function rpcSpec(who: string, source: unknown, rawOptions: unknown): ConsumerSpec {
  const options = requireOptions(who, rawOptions) as RpcHandlerOptions;
  let queue: string;
  let exchange: string | undefined;
  let routingKey: string | undefined;
  let exchangeType: ExchangeType = 'direct';
  const schema = isRpcContract(source) ? source.schema : undefined;
  if (typeof source === 'string') {
    queue = requireName(who, 'queue', source);
  } else if (source && typeof source === 'object' && !Array.isArray(source)) {
    const s = source as { queue?: unknown; exchange?: unknown; routingKey?: unknown; exchangeType?: unknown };
    queue = requireName(who, 'queue', s.queue);
    if (s.exchange !== undefined) {
      exchange = requireName(who, 'exchange', s.exchange);
      routingKey = requireName(who, 'routingKey', s.routingKey ?? queue, true);
      if (s.exchangeType !== undefined) {
        if (!isExchangeType(s.exchangeType)) {
          throw new WarrenDecoratorError(
            `${who}: exchangeType ${describeValue(s.exchangeType)} is not an exchange type`,
          );
        }
        exchangeType = s.exchangeType;
      }
    }
  } else {
    throw new WarrenDecoratorError(
      `${who}: expected a queue name, an RPC contract or { queue, exchange, routingKey }, got ${describeValue(source)}`,
    );
  }
  return {
    exchange: exchange ? { name: exchange, type: exchangeType } : undefined,
    bindingKeys: routingKey !== undefined ? [routingKey] : [],
    ...queueSpec(who, queue, options),
    prefetch: requirePrefetch(who, options.prefetch),
    // A handler's error becomes an error reply; only poison requests fail: keep them for inspection.
    failure: 'dead-letter',
    schema,
  };
}

/**
 * Serves requests from a queue: the method's return value (plain, Promise or Observable's last
 * value) is sent to the request's `reply_to` with its `correlation_id`, and the request is acked
 * only after the reply has been handed to the broker. A thrown error becomes an error reply.
 *
 * With a contract, the method's payload and return types are checked against it.
 * `@RpcHandler({ config: 'quotes' })` takes the queue and options from configuration at boot (the
 * module options' `handlers.quotes`).
 */
export function RpcHandler<Request, Reply>(
  contract: RpcContract<Request, Reply>,
  options?: RpcHandlerOptions,
): ContractMethodDecorator<Request, Reply | Promise<Reply> | Observable<Reply>>;
export function RpcHandler(source: RpcSource, options?: RpcHandlerOptions): MethodDecorator;
export function RpcHandler(configured: ConfiguredRpcHandler): MethodDecorator;
export function RpcHandler(source: RpcSource | ConfiguredRpcHandler, options?: RpcHandlerOptions) {
  return (target: object, key: string | symbol) => {
    if (isConfiguredSource(source)) {
      addHandlerMetadata(target, key, configuredMetadata('rpc', 'RpcHandler', methodName(target, key), source));
      return;
    }
    const who = decoratorWho('RpcHandler', methodName(target, key));
    const spec = rpcSpec(who, source, options);
    const extra = rpcExtra(options);
    const connection = requireConnection(who, options);
    const contract = isRpcContract(source) ? source : undefined;
    addHandlerMetadata(target, key, { kind: 'rpc', consumer: spec, extra, connection, contract });
  };
}

import type { Observable } from 'rxjs';
import type { WarrenContext } from '../consumer/warren-context.js';
import { isRpcContract, type RpcContract } from '../contracts/contracts.js';
import { EXCHANGE_TYPES, type ExchangeType } from '../topology/topology.js';
import type { ConsumerSpec } from '../topology/topology-builder.js';
import { WarrenDecoratorError } from '../warren.errors.js';
import {
  addHandlerMetadata,
  type ConnectionOption,
  describe,
  methodName,
  queueDeclaration,
  type QueueOptions,
  requireConnection,
  requireName,
  requireOptions,
  requirePrefetch,
} from './handler-metadata.js';

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

type RpcMethod<Request, Reply> = (
  payload: Request,
  context: WarrenContext,
) => Reply | Promise<Reply> | Observable<Reply>;

export interface RpcHandlerExtra {
  exposeErrorStack: boolean;
  [key: string]: unknown;
}

export function rpcSpec(where: string, source: unknown, rawOptions: unknown, decorator = 'RpcHandler'): ConsumerSpec {
  const options = requireOptions(decorator, where, rawOptions) as RpcHandlerOptions;
  let queue: string;
  let exchange: string | undefined;
  let routingKey: string | undefined;
  let exchangeType: ExchangeType = 'direct';
  const schema = isRpcContract(source) ? source.schema : undefined;
  if (typeof source === 'string') {
    queue = requireName(decorator, where, 'queue', source);
  } else if (source && typeof source === 'object' && !Array.isArray(source)) {
    const s = source as { queue?: unknown; exchange?: unknown; routingKey?: unknown; exchangeType?: unknown };
    queue = requireName(decorator, where, 'queue', s.queue);
    if (s.exchange !== undefined) {
      exchange = requireName(decorator, where, 'exchange', s.exchange);
      routingKey = requireName(decorator, where, 'routingKey', s.routingKey ?? queue, true);
      if (s.exchangeType !== undefined) {
        if (!EXCHANGE_TYPES.includes(s.exchangeType as ExchangeType)) {
          throw new WarrenDecoratorError(
            `@${decorator}() on ${where}: exchangeType ${describe(s.exchangeType)} is not an exchange type`,
          );
        }
        exchangeType = s.exchangeType as ExchangeType;
      }
    }
  } else {
    throw new WarrenDecoratorError(
      `@${decorator}() on ${where}: expected a queue name, an RPC contract or { queue, exchange, routingKey }, got ${describe(source)}`,
    );
  }
  return {
    exchange: exchange ? { name: exchange, type: exchangeType } : undefined,
    bindingKeys: routingKey !== undefined ? [routingKey] : [],
    queue: queueDeclaration(decorator, where, queue, options),
    prefetch: requirePrefetch(decorator, where, options.prefetch),
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
 */
export function RpcHandler<Request, Reply>(
  contract: RpcContract<Request, Reply>,
  options?: RpcHandlerOptions,
): <M extends RpcMethod<Request, Reply>>(
  target: object,
  key: string | symbol,
  descriptor: TypedPropertyDescriptor<M>,
) => void;
export function RpcHandler(source: RpcSource, options?: RpcHandlerOptions): MethodDecorator;
export function RpcHandler(source: RpcSource, options?: RpcHandlerOptions) {
  return (target: object, key: string | symbol) => {
    const where = methodName(target, key);
    const spec = rpcSpec(where, source, options);
    const extra: RpcHandlerExtra = { exposeErrorStack: options?.exposeErrorStack ?? false };
    const connection = requireConnection('RpcHandler', where, options);
    addHandlerMetadata(target, key, { kind: 'rpc', consumer: spec, extra, connection });
  };
}

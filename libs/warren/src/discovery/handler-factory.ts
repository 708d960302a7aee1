import { HttpException, Injectable, type InjectionToken } from '@nestjs/common';
import { type ContextId, ContextIdFactory, ExternalContextCreator, ModuleRef } from '@nestjs/core';
import type { ParamsFactory } from '@nestjs/core/helpers/external-context-creator.js';
import { Injector } from '@nestjs/core/injector/injector.js';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { REQUEST_CONTEXT_ID } from '@nestjs/core/router/request/request-constants.js';
import type { Handler } from '../consumer/handler-invoker.js';
import type { HandlerMetadata } from '../decorators/handler-metadata.js';
import type { HandlerWrapper, HandlerWrapperEntry } from '../decorators/handler-wrapper.js';
import type { WarrenContext } from '../consumer/warren-context.js';
import { WARREN_PARAM_ARGS_METADATA, WarrenParamtype } from '../decorators/payload.decorator.js';
import { PayloadValidationError, WarrenConfigurationError } from '../warren.errors.js';
import { createWithEnhancerCensus, quietExceptionFallback } from '../connection/amqp-compat.js';
import { isObservable, lastValueFrom } from 'rxjs';

/**
 * The ExecutionContext type guards, interceptors and filters see: `switchToRpc().getData()` is
 * the payload and `getContext()` the WarrenContext, as for a @nestjs/microservices handler.
 */
export const WARREN_CONTEXT_TYPE = 'rpc';

/** Maps `@Payload()`/`@Ctx()` (Warren's or @nestjs/microservices') and `@Header()` to the handler's two arguments. */
const paramsFactory: ParamsFactory = {
  exchangeKeyForValue(type: number, data: unknown, args: [unknown, WarrenContext]) {
    const [payload, context] = args;
    if (type === WarrenParamtype.PAYLOAD) {
      if (typeof data !== 'string' || data === '') return payload;
      // Own properties only: `@Payload('constructor')` must not reach into the prototype.
      return payload !== null && typeof payload === 'object' && Object.hasOwn(payload, data)
        ? (payload as Record<string, unknown>)[data]
        : undefined;
    }
    if (type === WarrenParamtype.CONTEXT) return context;
    if (type === WarrenParamtype.HEADER) {
      // A batch handler's context is the batch's contexts: no one message's headers to read.
      if (Array.isArray(context)) return undefined;
      const headers = context.headers;
      if (typeof data !== 'string' || data === '') return headers;
      return Object.hasOwn(headers, data) ? headers[data] : undefined;
    }
    return undefined;
  },
};

export type HandlerCollection = 'providers' | 'controllers';

/**
 * Turns a decorated method into a `(payload, context)` handler that runs through Nest's own
 * enhancer machinery (ExternalContextCreator, as @nestjs/microservices does for its handlers):
 * global, class and method guards, interceptors, pipes and exception filters, and parameter
 * decorators.
 */
@Injectable()
export class HandlerFactory {
  private readonly injector = new Injector();
  /**
   * The app's exception filters run as Nest runs them; an error none of them takes reaches the
   * failure policy without Nest's own `ERROR [ExceptionsHandler]` line and stack, so that a failed
   * delivery is logged once, by Warren, saying what becomes of the message (docs/failures.md).
   */
  private readonly contextCreator: ExternalContextCreator;

  constructor(
    contextCreator: ExternalContextCreator,
    private readonly moduleRef: ModuleRef,
  ) {
    this.contextCreator = quietExceptionFallback(contextCreator);
  }

  /**
   * A handler on a singleton: enhancers and parameter metadata are resolved here, once. When Nest
   * found none for it (no guard, interceptor, exception filter or parameter decorator, global
   * ones included), its proxy would only call the method and await the result: the method is
   * then called directly, as the proxy would (issue 18: four async functions less a delivery).
   */
  forInstance(instance: object, method: string): Handler {
    const { created: proxy, census } = createWithEnhancerCensus(this.contextCreator, (creator) =>
      this.create(instance, method, undefined, undefined, creator),
    );
    if (census && census.guards + census.interceptors + census.filters + census.params === 0) {
      const callback = (instance as Record<string, (...args: unknown[]) => unknown>)[method];
      return (payload, context) => callDirectly(callback, instance, payload, context);
    }
    return (payload, context) => proxy(payload, context).catch(rethrowForWarren);
  }

  /**
   * A handler on a request-scoped (or durable) provider: every message gets its own context id
   * (through `ContextIdFactory`, so a `ContextIdStrategy` applies), with the WarrenContext as the
   * REQUEST, and the provider and its request-scoped enhancers are instantiated for it, as Nest
   * does for an HTTP request.
   */
  forRequestScope(wrapper: InstanceWrapper, method: string, collection: HandlerCollection): Handler {
    const host = wrapper.host;
    if (!host) throw new WarrenConfigurationError(`${wrapper.name}: provider has no host module`);
    const durable = wrapper.isDependencyTreeDurable();
    return async (payload, context) => {
      const contextId = this.contextIdOf(context, durable);
      const instance = await this.injector.loadPerContext(
        wrapper.instance as object,
        host,
        host[collection] as Map<InjectionToken, InstanceWrapper>,
        contextId,
        wrapper,
      );
      const proxy = this.create(instance, method, contextId, wrapper.id);
      return proxy(payload, context).catch(rethrowForWarren);
    };
  }

  /**
   * `handler` inside the wrappers its method's decorators asked for (`addHandlerWrapper()`), each
   * resolved from the app; one that is not provided fails the boot, naming the decorator.
   */
  wrapped(
    handler: Handler,
    wrappers: readonly HandlerWrapperEntry[],
    label: string,
    metadata: readonly HandlerMetadata[],
  ): Handler {
    let result = handler;
    for (const entry of [...wrappers].reverse()) {
      let wrapper: HandlerWrapper;
      try {
        wrapper = this.moduleRef.get(entry.wrapper, { strict: false });
      } catch (err) {
        throw new WarrenConfigurationError(
          `${label}: ${entry.decorator} needs the provider ${entry.wrapper.name}, which the app does not have ` +
            `(import the module that provides it)`,
          { cause: err },
        );
      }
      result = wrapper.wrap(result, { label, metadata, options: entry.options });
    }
    return result;
  }

  private create(
    instance: object,
    method: string,
    contextId?: ContextId,
    inquirerId?: string,
    contextCreator: ExternalContextCreator = this.contextCreator,
  ): (payload: unknown, context: WarrenContext) => Promise<unknown> {
    const callback = (instance as Record<string, (...args: unknown[]) => unknown>)[method];
    return contextCreator.create(
      instance,
      callback,
      method,
      WARREN_PARAM_ARGS_METADATA,
      paramsFactory,
      contextId,
      inquirerId,
      undefined,
      WARREN_CONTEXT_TYPE,
    );
  }

  private contextIdOf(context: WarrenContext, durable: boolean): ContextId {
    const contextId = ContextIdFactory.getByRequest(context);
    const marked = context as unknown as Record<PropertyKey, unknown>;
    if (!marked[REQUEST_CONTEXT_ID]) {
      // Nest's own rule (router and microservices): a durable tree is shared between messages,
      // so its REQUEST is the strategy's payload, not one message.
      Object.defineProperty(marked, REQUEST_CONTEXT_ID, { value: contextId, enumerable: false });
      const request = durable ? contextId.payload : Object.assign(context, contextId.payload);
      this.moduleRef.registerRequestByContextId(request, contextId);
    }
    return contextId;
  }
}

/**
 * What Nest's proxy does for a handler without enhancers (ExternalContextCreator.create, @nestjs/core
 * 12.5.1): the method called with the handler's two arguments, its result awaited, an Observable's
 * last value taken (`lastValueFrom`, so an empty one fails as it does there); and what
 * `forInstance` adds, errors through `rethrowForWarren`.
 */
function callDirectly(
  callback: (...args: unknown[]) => unknown,
  instance: object,
  payload: unknown,
  context: WarrenContext,
): unknown {
  let result: unknown;
  try {
    result = callback.call(instance, payload, context);
  } catch (err) {
    return Promise.reject(forWarren(err));
  }
  if (isObservable(result)) return lastValueFrom(result).catch(rethrowForWarren);
  // A plain value as it is: the consumer acks (or replies) without a promise in between.
  if (!isThenable(result)) return result;
  return Promise.resolve(result).then(
    (value) => (isObservable(value) ? lastValueFrom(value).catch(rethrowForWarren) : value),
    rethrowForWarren,
  );
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * A `BadRequestException` escaping a handler (what `ValidationPipe` and the `Parse*Pipe`s throw,
 * unless an exception filter took it) says the message itself is wrong: retrying it cannot help,
 * so it becomes a `PoisonMessageError` for the failure policy.
 */
function rethrowForWarren(err: unknown): never {
  throw forWarren(err);
}

function forWarren(err: unknown): unknown {
  if (err instanceof HttpException && err.getStatus() === 400) {
    const response = err.getResponse();
    const raw =
      typeof response === 'object' && response !== null ? (response as { message?: unknown }).message : response;
    const messages = (Array.isArray(raw) ? raw : [raw ?? err.message]).map(String);
    return new PayloadValidationError(messages, { cause: err });
  }
  return err;
}

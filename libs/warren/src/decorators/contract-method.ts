import type { WarrenContext } from '../consumer/warren-context.js';

/**
 * Whether `Param` can take one property of `Payload` (what `@Payload('id')` hands a handler).
 * Optional properties keep their `undefined`: the message may lack them.
 */
type TakesAProperty<Payload, Param> = [Payload] extends [readonly unknown[]]
  ? // A batch's payloads: its elements are not properties `@Payload('id')` could pick.
    false
  : [Payload] extends [object]
    ? true extends { [K in keyof Payload]: [Payload[K]] extends [Param] ? true : false }[keyof Payload]
      ? true
      : false
    : false;

/**
 * Whether a method's first parameter fits a contract's payload. The type checker cannot see
 * parameter decorators, so a method qualifies when that parameter takes the payload itself (the
 * plain `(payload, context)` form, or `@Payload()`), one of its properties (`@Payload('id')`), or
 * the `WarrenContext` (`@Ctx()` first). Anything else, e.g. a custom parameter decorator or a pipe
 * that changes a property's type, is the explicit `@Subscribe<any>(Contract)` /
 * `@RpcHandler<any, Reply>(Contract)`.
 */
type FitsPayload<Payload, Param> = [Payload] extends [Param]
  ? true
  : [WarrenContext] extends [Param]
    ? true
    : TakesAProperty<Payload, Param>;

type PlainMethod<Payload, Result> = (payload: Payload, context: WarrenContext) => Result;

/**
 * Nothing more for a method `M` whose first parameter fits the payload (see FitsPayload); for any
 * other, the plain `(payload, context)` form, so that the compiler's error names the parameter and
 * the payload type that do not match.
 */
type PayloadCheck<Payload, M, Result> = M extends (first: infer Param, ...rest: any[]) => unknown
  ? true extends FitsPayload<Payload, Param>
    ? unknown
    : { value?: PlainMethod<Payload, Result> }
  : { value?: PlainMethod<Payload, Result> };

/**
 * The decorator a contract gives: applied to a method, it checks the method's first parameter
 * against the payload and its return type against `Result`.
 */
export type ContractMethodDecorator<Payload, Result = unknown> = <M extends (...args: any[]) => Result>(
  target: object,
  key: string | symbol,
  descriptor: TypedPropertyDescriptor<M> & PayloadCheck<Payload, M, Result>,
) => void;

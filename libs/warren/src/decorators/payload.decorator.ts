import type { PipeTransform, Type } from '@nestjs/common';
import { WarrenDecoratorError } from '../warren.errors.js';

/**
 * Where Nest keeps parameter decorator metadata (`ROUTE_ARGS_METADATA` in @nestjs/common, and
 * `PARAM_ARGS_METADATA` in @nestjs/microservices). Sharing it, and the microservices' parameter
 * type numbers below, makes `@Payload()`/`@Ctx()` of either package work on the handlers of the
 * other: a controller ported from the RMQ transport keeps its decorators as they are.
 */
export const WARREN_PARAM_ARGS_METADATA = '__routeArguments__';

/**
 * The numbers of @nestjs/microservices' `RpcParamtype` (payload, context), and one of Warren's own
 * for headers, far from theirs.
 */
export const WarrenParamtype = { PAYLOAD: 3, CONTEXT: 6, HEADER: 100 } as const;
export type WarrenParamtype = (typeof WarrenParamtype)[keyof typeof WarrenParamtype];

type PipeLike = PipeTransform | Type<PipeTransform>;

function addParam(paramtype: WarrenParamtype, data: string | undefined, pipes: PipeLike[]): ParameterDecorator {
  return (target, key, index) => {
    if (key === undefined) {
      throw new WarrenDecoratorError('@Payload(), @Header() and @Ctx() decorate handler method parameters only');
    }
    const owner = target.constructor;
    const args = Reflect.getMetadata(WARREN_PARAM_ARGS_METADATA, owner, key) ?? {};
    // The entry format Nest 11 and 12 both read (their `assignMetadata()` signatures differ).
    const entry = { index, data, pipes };
    Reflect.defineMetadata(WARREN_PARAM_ARGS_METADATA, { ...args, [`${paramtype}:${index}`]: entry }, owner, key);
  };
}

/**
 * The message's payload, or one property of it (`@Payload('id')`), through the given pipes:
 * `@Payload(new ValidationPipe())`, `@Payload('id', ParseIntPipe)`.
 */
export function Payload(...pipes: PipeLike[]): ParameterDecorator;
export function Payload(property: string, ...pipes: PipeLike[]): ParameterDecorator;
export function Payload(propertyOrPipe?: string | PipeLike, ...pipes: PipeLike[]): ParameterDecorator {
  if (typeof propertyOrPipe === 'string' || propertyOrPipe === undefined) {
    return addParam(WarrenParamtype.PAYLOAD, propertyOrPipe, pipes);
  }
  return addParam(WarrenParamtype.PAYLOAD, undefined, [propertyOrPipe, ...pipes]);
}

/** The delivery's `WarrenContext` (routing key, headers, `ack()`/`nack()` in manual mode). */
export function Ctx(): ParameterDecorator {
  return addParam(WarrenParamtype.CONTEXT, undefined, []);
}

/**
 * One header of the message (`@Header('x-tenant')`), or all of them (`@Header()`), through the given
 * pipes: `@Header('x-version', ParseIntPipe)`. Header names are matched exactly, as AMQP does. A
 * header the message lacks is `undefined`.
 */
export function Header(...pipes: PipeLike[]): ParameterDecorator;
export function Header(name: string, ...pipes: PipeLike[]): ParameterDecorator;
export function Header(nameOrPipe?: string | PipeLike, ...pipes: PipeLike[]): ParameterDecorator {
  if (typeof nameOrPipe === 'string' || nameOrPipe === undefined) {
    return addParam(WarrenParamtype.HEADER, nameOrPipe, pipes);
  }
  return addParam(WarrenParamtype.HEADER, undefined, [nameOrPipe, ...pipes]);
}

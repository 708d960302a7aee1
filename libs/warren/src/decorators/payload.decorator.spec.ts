import { WarrenDecoratorError } from '../warren.errors.js';
import { Ctx, Header, Payload } from './payload.decorator.js';

describe('@Payload() and @Ctx() misused', () => {
  class Service {}

  it.each([
    ['@Payload()', Payload()],
    ['@Ctx()', Ctx()],
    ['@Header()', Header('x-tenant')],
  ])('%s on a constructor parameter is a WarrenDecoratorError', (_name, decorator) => {
    // What TypeScript does for a decorated constructor parameter: no method name.
    const decorate = () => decorator(Service, undefined, 0);
    expect(decorate).toThrow(WarrenDecoratorError);
    expect(decorate).toThrow('@Payload(), @Header() and @Ctx() decorate handler method parameters only');
  });
});

import * as core from '../index.js';
import { WarrenConnectionError } from '../warren.errors.js';
import * as microservices from './index.js';

describe('the microservices entry point', () => {
  it('re-exports RemoteHandlerError, the same class as the core one', () => {
    expect(microservices.RemoteHandlerError).toBe(core.RemoteHandlerError);
    expect(new microservices.RemoteHandlerError({ status: 'error' })).toBeInstanceOf(core.WarrenError);
  });

  it.each([
    ['WarrenServer before listen()', () => new microservices.WarrenServer({ url: 'amqp://127.0.0.1' }).unwrap()],
    [
      'WarrenClientProxy before connect()',
      () => new microservices.WarrenClientProxy({ url: 'amqp://127.0.0.1' }).unwrap(),
    ],
  ])('unwrap() on %s is a WarrenConnectionError', (_name, unwrap) => {
    expect(unwrap).toThrow(WarrenConnectionError);
    expect(unwrap).toThrow(/not (listening|connected) yet/);
  });
});

import { EMPTY, of } from 'rxjs';
import { callHandler, invokeHandler } from './handler-invoker.js';
import type { WarrenContext } from './warren-context.js';

const context = {} as WarrenContext;

describe('callHandler', () => {
  it('returns a plain value as it is, with no promise', () => {
    expect(callHandler(() => 42, undefined, context)).toBe(42);
    expect(callHandler(() => undefined, undefined, context)).toBeUndefined();
  });

  it('gives a promise for a promise, an Observable (its last value) and a promise of an Observable', async () => {
    await expect(callHandler(() => Promise.resolve('p'), undefined, context)).resolves.toBe('p');
    await expect(callHandler(() => of(1, 2, 3), undefined, context)).resolves.toBe(3);
    await expect(callHandler(() => EMPTY, undefined, context)).resolves.toBeUndefined();
    await expect(callHandler(() => Promise.resolve(of('x', 'y')), undefined, context)).resolves.toBe('y');
  });

  it('throws what the handler throws synchronously; invokeHandler rejects with it instead', async () => {
    const failing = () => {
      throw new Error('handler failed');
    };
    expect(() => callHandler(failing, undefined, context)).toThrow('handler failed');
    await expect(invokeHandler(failing, undefined, context)).rejects.toThrow('handler failed');
    await expect(invokeHandler(() => 7, undefined, context)).resolves.toBe(7);
  });
});

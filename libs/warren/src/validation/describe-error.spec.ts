import { describeError, errorField, errorMessage, errorName } from './describe-error.js';

describe('describing a thrown value never throws', () => {
  const throwingGetter = Object.defineProperty({}, 'message', {
    get() {
      throw new Error('no');
    },
  });
  const trap = () => {
    throw new Error('trap');
  };
  const hostileProxy = new Proxy({}, { get: trap, getPrototypeOf: trap, has: trap, ownKeys: trap });
  const badToString = { toString: trap, toJSON: trap };

  it.each([
    ['a getter that throws', throwingGetter],
    ['a Proxy whose traps throw', hostileProxy],
    ['toString and toJSON that throw', badToString],
  ])('%s', (_, thrown) => {
    expect(errorName(thrown)).toBe('Error');
    expect(errorMessage(thrown)).toBe('an error that cannot be described (reading it threw)');
    expect(describeError(thrown)).toBe('an error that cannot be described (reading it threw)');
    expect(errorField(thrown, 'code')).toBeUndefined();
  });

  it('describes ordinary values as before', () => {
    expect(describeError(new TypeError('bad'))).toBe('TypeError: bad');
    expect(errorMessage({ status: 'error', message: 'plain' })).toBe('plain');
    expect(errorMessage({ status: 'error' })).toBe('{"status":"error"}');
    expect(errorMessage('text')).toBe('text');
    expect(errorName({ name: 'Custom' })).toBe('Custom');
    expect(errorField({ code: 'E1' }, 'code')).toBe('E1');
  });
});

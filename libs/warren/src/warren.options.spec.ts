import { DEFAULT_CONNECTION, warrenLoggerContext } from './warren.options.js';

describe('warrenLoggerContext', () => {
  it('is plain "Warren" for the default connection, named or not', () => {
    expect(warrenLoggerContext({})).toBe('Warren');
    expect(warrenLoggerContext({ name: DEFAULT_CONNECTION })).toBe('Warren');
  });

  it('carries the name of a named connection', () => {
    expect(warrenLoggerContext({ name: 'billing' })).toBe('Warren:billing');
  });
});

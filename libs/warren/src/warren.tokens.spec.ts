import { Publisher } from './publisher/publisher.js';
import { WarrenConfigurationError } from './warren.errors.js';
import { getWarrenToken } from './warren.tokens.js';

describe('getWarrenToken misused', () => {
  it('refuses an empty connection name with a WarrenConfigurationError', () => {
    const token = () => getWarrenToken(Publisher, '');
    expect(token).toThrow(WarrenConfigurationError);
    expect(token).toThrow('getWarrenToken(): the connection name must be a non-empty string, got ');
  });

  it('refuses a class that is no part of a connection with a WarrenConfigurationError', () => {
    class Billing {}
    const token = () => getWarrenToken(Billing, 'billing');
    expect(token).toThrow(WarrenConfigurationError);
    expect(token).toThrow('getWarrenToken(): Billing is not a part of a Warren connection');
  });
});

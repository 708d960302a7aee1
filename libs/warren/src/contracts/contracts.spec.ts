import { WarrenConfigurationError } from '../warren.errors.js';
import { defineEvent, defineRpc } from './contracts.js';

describe('contracts defined with arguments Warren cannot use', () => {
  it.each([
    ['an RPC contract without a queue', () => defineRpc(''), 'defineRpc(queue): queue must be a non-empty string'],
    [
      'an RPC contract with an exchange but no routing key',
      () => defineRpc('rpc_queue', { exchange: 'rpc' }),
      'defineRpc("rpc_queue"): an exchange needs a routingKey',
    ],
    [
      'an event contract without an exchange',
      () => defineEvent('', 'order.placed'),
      'defineEvent(exchange, routingKey): exchange must be a non-empty string',
    ],
    [
      'an event contract whose routing key is no string',
      () => defineEvent('orders', 7 as unknown as string),
      'defineEvent("orders"): routingKey must be a string',
    ],
  ])('refuse %s with a WarrenConfigurationError', (_name, define, message) => {
    expect(define).toThrow(new WarrenConfigurationError(message));
    expect(define).toThrow(WarrenConfigurationError);
  });
});

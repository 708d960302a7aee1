import amqp, { type AmqpConnectionManager, type AmqpConnectionManagerOptions } from 'amqp-connection-manager';

/**
 * Where the app's connection managers come from. The one seam between Warren and the transport:
 * everything above it sees amqp-connection-manager's interfaces only.
 */
export function createConnectionManager(urls: string[], options: AmqpConnectionManagerOptions): AmqpConnectionManager {
  return amqp.connect(urls, options);
}

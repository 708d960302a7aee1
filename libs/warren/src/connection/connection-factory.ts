import amqp, { type AmqpConnectionManager, type AmqpConnectionManagerOptions } from 'amqp-connection-manager';
import { createMemoryConnectionManager, isMemoryUrl } from '../memory/connection-manager.js';

/**
 * Where the app's connection managers come from. The one seam between Warren and the transport:
 * everything above it sees amqp-connection-manager's interfaces only. `memory://` URLs get the
 * in-memory broker (same interfaces, same semantics, no socket).
 */
export function createConnectionManager(urls: string[], options: AmqpConnectionManagerOptions): AmqpConnectionManager {
  if (isMemoryUrl(urls[0])) return createMemoryConnectionManager(urls, options);
  return amqp.connect(urls, options);
}

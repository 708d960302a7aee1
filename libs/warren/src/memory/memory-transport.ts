import type { AmqpConnectionManager } from 'amqp-connection-manager';
import { schemeOf, type Transport } from '../connection/transport.js';
import type { MemoryChannelWrapper } from './channel-wrapper.js';
import { isMemoryUrl, MemoryConnectionManager, parseMemoryUrl } from './connection-manager.js';

/**
 * The in-memory broker as Warren's transport for `memory://name` URLs. Loaded by the connection
 * factory only when an app names such a URL.
 */
export const memoryTransport: Transport = {
  urlsProblem(urls) {
    // The broker lives in this process: there is nothing to fail over to or from.
    const foreign = urls.find((url) => !isMemoryUrl(url));
    return foreign === undefined ? undefined : `a memory:// URL cannot be mixed with ${schemeOf(foreign)}:// URLs`;
  },

  describeUrl: (url) => `memory://${parseMemoryUrl(url).broker}`,

  createConnectionManager: (urls, options) =>
    // Warren uses nothing of a manager but what amqp-connection-manager's interface has.
    new MemoryConnectionManager(urls, options) as unknown as AmqpConnectionManager,

  // It accepts every connection.
  unrecoverableConnectError: () => undefined,

  reopenChannel: (wrapper) => (wrapper as unknown as MemoryChannelWrapper).reopen(),

  // There is no socket to die under a close: it always finishes.
  closeManager: (manager) => manager.close(),
};

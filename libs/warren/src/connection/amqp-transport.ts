import amqp, { type AmqpConnectionManager } from 'amqp-connection-manager';
import { once } from 'node:events';
import {
  coalesceWrites,
  guardFrameDecoding,
  reopenChannel,
  socketOf,
  unrecoverableConnectError,
} from './amqp-compat.js';
import { redactCredentials } from './redact.js';
import { tlsFailure } from './tls-failures.js';
import { schemeOf, type Transport } from './transport.js';

const AMQP_SCHEMES = new Set(['amqp', 'amqps']);

/** The URL with everything between `://` and its last `@` left out: what a misread URL can show. */
function hideUserinfo(url: string): string {
  const start = url.indexOf('://') + 3;
  const at = url.lastIndexOf('@');
  return at > start ? `${url.slice(0, start)}***${url.slice(at)}` : redactCredentials(url);
}

/** RabbitMQ, through amqplib and amqp-connection-manager. */
export const amqpTransport: Transport = {
  urlsProblem(urls) {
    // Several URLs are brokers to fail over between: all must speak AMQP.
    const foreign = urls.find((url) => !AMQP_SCHEMES.has(schemeOf(url) ?? ''));
    return foreign === undefined ? undefined : `a ${schemeOf(foreign)}:// URL cannot be mixed with amqp:// URLs`;
  },

  describeUrl(url) {
    try {
      const u = new URL(url);
      // An unencoded '/', '?' or '#' in a password makes the parser read the rest of the password
      // as a host, a port and a path; the URL's last '@' then sits past its authority.
      if (`${u.pathname}${u.search}${u.hash}`.includes('@')) return hideUserinfo(url);
      const port = u.port || (u.protocol === 'amqps:' ? '5671' : '5672');
      return `${u.protocol}//${u.hostname}:${port}${u.pathname && u.pathname !== '/' ? u.pathname : '/'}`;
    } catch {
      return redactCredentials(url);
    }
  },

  createConnectionManager(urls, options) {
    const manager = amqp.connect(urls, options);
    manager.on('connect', ({ connection }) => {
      // Before any channel's setup runs, so before the first delivery can arrive.
      guardFrameDecoding(connection);
      coalesceWrites(socketOf(connection));
    });
    return manager;
  },

  unrecoverableConnectError: (err) => tlsFailure(err) ?? unrecoverableConnectError(err),

  reopenChannel,

  /**
   * Two waits in the libraries never end: amqplib's connection.close() waits for the broker's
   * CloseOk even when the socket dies first, and amqp-connection-manager's close() cancels a
   * pending reconnect wait and then waits for it. Once the socket is gone (or there is none) there
   * is nothing left to close, so stop waiting then; the libraries' own close still finishes
   * whatever remains in the background. A third never ends while the broker blocks the
   * connection (a memory or disk alarm): it reads nothing, so the close goes unanswered. After
   * `timeoutMs` the socket is destroyed, which fails whatever still waits on it.
   */
  async closeManager(manager: AmqpConnectionManager, timeoutMs: number) {
    const connected = manager.isConnected();
    const socket = socketOf(manager.connection);
    const closing = manager.close();
    closing.catch(() => undefined);
    if (!connected || socket?.closed) return;
    let timer: NodeJS.Timeout | undefined;
    const cut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        socket?.destroy();
        resolve();
      }, timeoutMs);
    });
    try {
      await Promise.race([socket ? Promise.race([closing, once(socket, 'close')]) : closing, cut]);
    } finally {
      clearTimeout(timer);
    }
  },
};

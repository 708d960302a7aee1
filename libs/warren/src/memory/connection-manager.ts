import type { AmqpConnectionManagerOptions, CreateChannelOpts } from 'amqp-connection-manager';
import { EventEmitter, once } from 'node:events';
import { redactCredentials } from '../connection/redact.js';
import { type MemoryBroker, memoryBroker } from './broker.js';
import { MemoryChannelWrapper } from './channel-wrapper.js';
import type { MemoryConnection } from './connection.js';

const MEMORY_URL = /^memory:\/\//i;

/** True for `memory://` URLs: the in-memory broker. */
export function isMemoryUrl(url: unknown): url is string {
  return typeof url === 'string' && MEMORY_URL.test(url);
}

/** `memory://[user[:password]@]name[/...]` → the broker name and the user it authenticates as. */
export function parseMemoryUrl(url: string): { broker: string; user: string } {
  let rest = url.replace(MEMORY_URL, '');
  rest = rest.split(/[/?#]/, 1)[0] ?? '';
  let user = 'guest';
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const credentials = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const name = credentials.split(':', 1)[0];
    if (name) user = decodeURIComponent(name);
  }
  return { broker: decodeURIComponent(rest), user };
}

/**
 * amqp-connection-manager's `AmqpConnectionManager` for the in-memory broker: the same events
 * ('connect', 'disconnect', 'connectFailed', 'blocked'), the same reconnect after the broker
 * closed the connection (`reconnectTimeInSeconds` later), the same `close()`.
 */
export class MemoryConnectionManager extends EventEmitter {
  private readonly reconnectTimeInSeconds: number;
  private readonly broker: MemoryBroker;
  private readonly user: string;
  private readonly clientName?: string;
  private current?: MemoryConnection;
  private connecting?: Promise<void>;
  private retry?: NodeJS.Timeout;
  private closed = false;
  private wrappers: MemoryChannelWrapper[] = [];

  constructor(
    private readonly urls: string[],
    options: AmqpConnectionManagerOptions = {},
  ) {
    super();
    const url = urls[0];
    if (!isMemoryUrl(url)) throw new Error(`not a memory:// URL: ${redactCredentials(String(url))}`);
    const { broker, user } = parseMemoryUrl(url);
    this.broker = memoryBroker(broker);
    this.user = user;
    // amqp-connection-manager's default: the heartbeat interval, 5 s unless given.
    this.reconnectTimeInSeconds = options.reconnectTimeInSeconds || (options.heartbeatIntervalInSeconds ?? 5);
    const properties = (options.connectionOptions as { clientProperties?: { connection_name?: unknown } } | undefined)
      ?.clientProperties;
    this.clientName = typeof properties?.connection_name === 'string' ? properties.connection_name : undefined;
    // One listener per channel wrapper.
    this.setMaxListeners(0);
  }

  /** The current connection (an amqplib `ChannelModel` look-alike), or undefined while down. */
  get connection(): MemoryConnection | undefined {
    return this.current;
  }

  get channelCount(): number {
    return this.wrappers.length;
  }

  /** Connects (it can only fail by timing out, which the in-memory broker never does). */
  async connect({ timeout }: { timeout?: number } = {}): Promise<void> {
    if (this.current) return;
    void this.startConnect();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        once(this, 'connect'),
        ...(timeout
          ? [
              new Promise((_resolve, reject) => {
                timer = setTimeout(() => reject(new Error('amqp-connection-manager: connect timeout')), timeout);
              }),
            ]
          : []),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  createChannel(options: CreateChannelOpts = {}): MemoryChannelWrapper {
    const wrapper = new MemoryChannelWrapper(this, options);
    this.wrappers.push(wrapper);
    wrapper.once('close', () => {
      this.wrappers = this.wrappers.filter((w) => w !== wrapper);
    });
    return wrapper;
  }

  isConnected(): boolean {
    return this.current !== undefined;
  }

  /** Closes the connection for good: channels first, then the connection; no 'disconnect'. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retry);
    await this.connecting;
    await Promise.all(this.wrappers.map((w) => w.close())).catch(() => undefined);
    this.wrappers = [];
    const connection = this.current;
    if (connection) {
      connection.removeAllListeners('close');
      await connection.close();
    }
    this.current = undefined;
  }

  private startConnect(): Promise<void> {
    if (this.connecting) return this.connecting;
    if (this.closed || this.current) return Promise.resolve();
    this.connecting = Promise.resolve().then(() => {
      this.connecting = undefined;
      if (this.closed) return;
      const connection = this.broker.connect(this.clientName, this.user);
      this.current = connection;
      connection.on('blocked', (reason: string) => this.emit('blocked', { reason }));
      connection.on('unblocked', () => this.emit('unblocked'));
      // 'close' follows every 'error': the reconnect is handled there.
      connection.on('error', () => undefined);
      connection.on('close', (err?: Error) => {
        this.current = undefined;
        this.emit('disconnect', { err });
        this.retry = setTimeout(() => void this.startConnect(), this.reconnectTimeInSeconds * 1000);
      });
      this.emit('connect', { connection, url: this.urls[0] });
    });
    return this.connecting;
  }
}

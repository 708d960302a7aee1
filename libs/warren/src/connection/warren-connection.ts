import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { AmqpConnectionManager, ChannelWrapper, CreateChannelOpts } from 'amqp-connection-manager';
import { once } from 'node:events';
import { createConnectionManager } from './connection-factory.js';
import { coalesceWrites, socketOf, unrecoverableConnectError } from './amqp-compat.js';
import { reopenWhenRefused } from './channel-reopening.js';
import { WarrenConnectionError } from '../warren.errors.js';
import { loadOpenTelemetry } from '../tracing/trace-context.js';
import { connectionNameOf, DEFAULT_CONNECTION, type WarrenModuleOptions } from '../warren.options.js';
import { describeBroker, redactCredentials } from './redact.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';

type Role = 'consume' | 'publish';

/** What our own boot timer rejects with: told apart by identity, not by text. */
const CONNECT_TIMEOUT = new WarrenConnectionError('connect timeout');

/**
 * The app's two connections to the broker. Publishing and consuming are kept apart because
 * RabbitMQ throttles a publishing connection under flow control, and a consumer sharing it would
 * stop acking, which keeps the broker's memory high: the stall would feed itself.
 */
export class WarrenConnection implements OnApplicationShutdown {
  private readonly logger: Logger;
  private readonly managers: Record<Role, AmqpConnectionManager>;
  private readonly urls: string[];
  private closed = false;
  private readonly channels = new WeakMap<
    ChannelWrapper,
    { manager: AmqpConnectionManager; stopReopening: () => void }
  >();
  private readonly reopenings = new Set<() => void>();

  constructor(private readonly options: WarrenModuleOptions) {
    this.urls = brokerUrls(options);
    const name = connectionNameOf(options);
    const named = name !== DEFAULT_CONNECTION;
    this.logger = new Logger(named ? `Warren:${name}` : 'Warren');
    // Two named connections on one broker must be told apart in its management UI.
    const connectionName =
      options.connectionName ?? (named ? `${WARREN_DEFAULTS.connectionName}-${name}` : WARREN_DEFAULTS.connectionName);
    const heartbeat = options.heartbeatSeconds ?? WARREN_DEFAULTS.heartbeatSeconds;
    const reconnect = (options.reconnectDelayMs ?? WARREN_DEFAULTS.reconnectDelayMs) / 1000;
    const make = (role: Role) => {
      const manager = createConnectionManager(this.urls, {
        heartbeatIntervalInSeconds: heartbeat,
        reconnectTimeInSeconds: reconnect,
        connectionOptions: {
          // Nagle's algorithm holds small frames back ~40 ms waiting for an ACK: every
          // request/reply round trip would pay it.
          noDelay: true,
          clientProperties: { connection_name: `${connectionName}:${role}` },
        },
      });
      manager.on('connect', ({ connection, url }) => {
        coalesceWrites(socketOf(connection));
        this.logger.log(`${role} connection up: ${describeUrl(url)}`);
      });
      manager.on('disconnect', ({ err }) => {
        if (!this.closed) this.logger.warn(`${role} connection lost: ${redactCredentials(err?.message ?? 'closed')}`);
      });
      manager.on('connectFailed', ({ err, url }) => {
        if (!this.closed) {
          this.logger.warn(`${role} connection to ${describeUrl(url)} failed: ${redactCredentials(err.message)}`);
        }
      });
      manager.on('blocked', ({ reason }) => this.logger.warn(`${role} connection blocked by the broker: ${reason}`));
      return manager;
    };
    this.managers = { consume: make('consume'), publish: make('publish') };
  }

  /** Waits until both connections are up, or fails with an error naming the broker (never its password). */
  async connect(): Promise<void> {
    const timeout = this.options.connectTimeoutMs ?? WARREN_DEFAULTS.connectTimeoutMs;
    let lastError: Error | undefined;
    let fatal: (err: Error) => void = () => undefined;
    const onFailed = ({ err }: { err: Error }) => {
      lastError = err;
      // Retrying cannot fix refused credentials or a missing vhost: fail the boot now.
      const unrecoverable = unrecoverableConnectError(err);
      if (unrecoverable) fatal(unrecoverable);
    };
    const roles = Object.values(this.managers);
    for (const manager of roles) manager.on('connectFailed', onFailed);
    // Settled before the first publish or delivery, which then know whether to carry trace context.
    const tracing = loadOpenTelemetry();
    let timer: NodeJS.Timeout | undefined;
    try {
      // Our own timer rather than connect({ timeout }): that one outlives a failed boot and keeps
      // the process alive until it fires.
      await Promise.race([
        Promise.all(roles.map((m) => m.connect())),
        new Promise<never>((_, reject) => (fatal = reject)),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(CONNECT_TIMEOUT), timeout))),
      ]);
      await tracing;
    } catch (err) {
      await this.close();
      const timedOut = err === CONNECT_TIMEOUT;
      const cause = timedOut && lastError ? lastError : err;
      const reason = cause instanceof Error ? redactCredentials(cause.message) : String(cause);
      const when = timedOut ? `within ${timeout} ms` : 'at boot';
      throw new WarrenConnectionError(
        `Cannot connect to RabbitMQ at ${this.urls.map(describeBroker).join(', ')} ${when}: ${reason}`,
      );
    } finally {
      clearTimeout(timer);
      for (const manager of roles) manager.off('connectFailed', onFailed);
    }
  }

  /**
   * A channel that amqp-connection-manager re-creates (and re-runs its setups on) after every
   * reconnect, and that Warren reopens when the broker closes it (channel-reopening.ts). Its errors
   * are logged here: an 'error' event without a listener would crash the app. `onRefused` hears why
   * the broker closed it, as it closes: before the promises it failed are seen to fail.
   */
  createChannel(role: Role, options: CreateChannelOpts, onRefused?: (err: Error) => void): ChannelWrapper {
    const manager = this.managers[role];
    const channel = manager.createChannel(options);
    const name = options.name ?? role;
    channel.on('error', (err: Error) => {
      if (!this.closed) this.logger.error(`channel "${name}": ${redactCredentials(err.message)}`);
    });
    const delay = this.options.reconnectDelayMs ?? WARREN_DEFAULTS.reconnectDelayMs;
    const stopReopening = reopenWhenRefused(channel, manager, delay, (err) => {
      onRefused?.(err);
      if (!this.closed) {
        this.logger.error(
          `channel "${name}" closed by the broker: ${redactCredentials(err.message)}; reopening it in ${delay} ms`,
        );
      }
    });
    this.channels.set(channel, { manager, stopReopening });
    this.reopenings.add(stopReopening);
    return channel;
  }

  /**
   * Closes a channel made by `createChannel`. amqplib's channel.close() waits for the broker's
   * CloseOk even when the connection dies first: the connection's loss ends that wait too (the
   * broker has then closed the channel itself).
   */
  async closeChannel(channel: ChannelWrapper): Promise<void> {
    const owner = this.channels.get(channel);
    if (owner) {
      owner.stopReopening();
      this.reopenings.delete(owner.stopReopening);
    }
    const manager = owner?.manager;
    let lost = () => undefined as void;
    const disconnected = new Promise<void>((resolve) => (lost = resolve));
    manager?.once('disconnect', lost);
    try {
      await Promise.race([channel.close().catch(() => undefined), disconnected]);
    } finally {
      manager?.off('disconnect', lost);
    }
  }

  isConnected(): boolean {
    return this.managers.consume.isConnected() && this.managers.publish.isConnected();
  }

  /** The connection manager of one role; for Warren's own components and for tests. */
  manager(role: Role): AmqpConnectionManager {
    return this.managers[role];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A channel waiting to be reopened must not hold the process up after the app has closed.
    for (const stop of this.reopenings) stop();
    await Promise.all(Object.values(this.managers).map(closeManager));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}

export function brokerUrls(options: WarrenModuleOptions): string[] {
  const urls = options.urls ?? (options.url ? [options.url] : []);
  if (urls.length === 0)
    throw new WarrenConnectionError('WarrenModule: give `url` or `urls` (e.g. amqp://127.0.0.1:5672)');
  for (const url of urls) {
    if (typeof url !== 'string' || !/^(amqps?|memory):\/\//i.test(url)) {
      throw new WarrenConnectionError(
        `WarrenModule: broker URL ${typeof url === 'string' ? `"${redactCredentials(url)}"` : String(url)} must start with amqp://, amqps:// or memory://`,
      );
    }
  }
  // The in-memory broker lives in this process: there is nothing to fail over to or from.
  const memory = urls.filter((url) => /^memory:\/\//i.test(url));
  if (memory.length > 0 && memory.length !== urls.length) {
    throw new WarrenConnectionError('WarrenModule: a memory:// URL cannot be mixed with amqp:// URLs');
  }
  return urls;
}

/**
 * Closes one manager without hanging on a dead link. Two waits in the libraries never end:
 * amqplib's connection.close() waits for the broker's CloseOk even when the socket dies first,
 * and amqp-connection-manager's close() cancels a pending reconnect wait and then waits for it.
 * Once the socket is gone (or there is none) there is nothing left to close, so stop waiting
 * then; the libraries' own close still finishes whatever remains in the background.
 */
async function closeManager(manager: AmqpConnectionManager): Promise<void> {
  const connected = manager.isConnected();
  const socket = socketOf(manager.connection);
  const closing = manager.close();
  closing.catch(() => undefined);
  if (!connected || socket?.closed) return;
  // (The in-memory broker's connections have no socket, and always close.)
  await (socket ? Promise.race([closing, once(socket, 'close')]) : closing);
}

function describeUrl(url: unknown): string {
  return typeof url === 'string' ? describeBroker(url) : 'broker';
}

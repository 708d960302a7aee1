import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { AmqpConnectionManager, ChannelWrapper, CreateChannelOpts } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import { brokerUrls, transportFor } from './connection-factory.js';
import { reopenWhenRefused } from './channel-reopening.js';
import { brokerReplacement } from './without-broker.js';
import type { Transport } from './transport.js';
import { WarrenConnectionError } from '../warren.errors.js';
import { loadOpenTelemetry } from '../tracing/trace-context.js';
import { addGaugeSource, type GaugeName, startTelemetry } from '../telemetry/telemetry.js';
import { ATTR } from '../telemetry/attributes.js';
import { connectionNameOf, DEFAULT_CONNECTION, type WarrenModuleOptions } from '../warren.options.js';
import { redactCredentials } from './redact.js';
import { type SocketSecurity, socketSecurity } from './tls-options.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';

/** Which of the app's two connections: see `WarrenConnection`. */
export type ConnectionRole = 'consume' | 'publish';

/** What each event of a connection tells its listeners (`WarrenConnection.onEvent`). */
export interface ConnectionEvents {
  /** The connection is up (again): `url` names the broker, without credentials. */
  connect: { url: string };
  /** The connection was lost; `err` says why, when the client library knows. */
  disconnect: { err?: Error };
  /** An attempt to connect failed; Warren tries again unless it can never succeed. */
  connectFailed: { err: Error; url: string };
  /** The broker stopped reading from the connection (a memory or disk alarm). */
  blocked: { reason: string };
  unblocked: undefined;
}

export type ConnectionEvent = keyof ConnectionEvents;

/** How a connection's events reach a listener: from the connection manager's own payloads. */
type Relay = (payload?: { url?: unknown; err?: Error; reason?: string }) => void;

/** The transport of the connection's URLs, and a connection manager of it per role. */
interface Link {
  transport: Transport;
  managers: Record<ConnectionRole, AmqpConnectionManager>;
}

/** What our own boot timer rejects with: told apart by identity, not by text. */
const CONNECT_TIMEOUT = new WarrenConnectionError('connect timeout');

/**
 * The app's two connections to the broker. Publishing and consuming are kept apart because
 * RabbitMQ throttles a publishing connection under flow control, and a consumer sharing it would
 * stop acking, which keeps the broker's memory high: the stall would feed itself.
 *
 * The transport, and with it the connection managers, come with `connect()`: an app on RabbitMQ
 * never loads the in-memory broker, which is loaded only when a URL names it.
 */
export class WarrenConnection implements OnApplicationShutdown {
  private readonly logger: Logger;
  /** This connection, as errors name it. */
  private readonly label: string;
  private readonly urls: string[];
  private opening?: Promise<Link>;
  private link?: Link;
  private closed = false;
  private readonly channels = new WeakMap<
    ChannelWrapper,
    { manager: AmqpConnectionManager; stopReopening: () => void }
  >();
  private readonly reopenings = new Set<() => void>();
  /** Listeners that asked before the managers existed: attached when they do. */
  private readonly waitingListeners = new Set<[ConnectionRole, ConnectionEvent, Relay]>();
  private readonly generations: Record<ConnectionRole, number> = { consume: 0, publish: 0 };
  /** Why the broker blocks the role's connection (a resource alarm), while it does. */
  private readonly blocked: Record<ConnectionRole, string | undefined> = { consume: undefined, publish: undefined };
  /** The broker node the role's connection last came up on, as its URL without credentials. */
  private readonly nodes: Record<ConnectionRole, string | undefined> = { consume: undefined, publish: undefined };
  /** This connection's name, as its metrics carry it (`warren.connection`). */
  private readonly name: string;
  /** Removes this connection's gauge readers from the metrics at close. */
  private readonly gauges: (() => void)[] = [];
  /** The sockets' TLS and login options, checked at construction. */
  private readonly security: SocketSecurity;

  constructor(private readonly options: WarrenModuleOptions) {
    const urls = brokerUrls(options);
    const name = connectionNameOf(options);
    const named = name !== DEFAULT_CONNECTION;
    // A boot without a broker (without-broker.ts) checks the app's URLs and TLS, then uses its own.
    this.security = socketSecurity(options, urls, named ? `WarrenModule (connection "${name}")` : 'WarrenModule');
    const replacement = brokerReplacement(this);
    this.urls = replacement ? [replacement] : urls;
    this.name = name;
    this.logger = new Logger(named ? `Warren:${name}` : 'Warren');
    this.label = named ? `WarrenConnection "${name}"` : 'WarrenConnection';
    for (const role of ['consume', 'publish'] as const) {
      const attributes = { [ATTR.connection]: name, [ATTR.role]: role };
      this.gauges.push(
        addGaugeSource('connectionUp', (result) => result.observe(this.isConnected(role) ? 1 : 0, attributes)),
      );
    }
  }

  /**
   * Reports `read()` as the gauge's value for this connection whenever a metric reader collects
   * (only with an SDK's MeterProvider registered), until the connection closes.
   */
  addGauge(gauge: GaugeName, read: () => number): void {
    const attributes = { [ATTR.connection]: this.name };
    this.gauges.push(addGaugeSource(gauge, (result) => result.observe(read(), attributes)));
  }

  /**
   * Starts both connections without waiting for the broker (`waitForBroker: false`): they connect
   * whenever it answers, and reconnect as usual; each failed attempt is logged.
   */
  async connectInBackground(): Promise<void> {
    const { managers } = await this.open();
    this.logger.log('not waiting for the broker (waitForBroker: false): the consumers start once it answers');
    // Starts the attempts (and the retries after a failure): no one waits for the outcome.
    for (const manager of Object.values(managers)) manager.connect().catch(() => undefined);
    // Settled before the first publish or delivery, which then know whether to carry trace context.
    await loadOpenTelemetry();
    startTelemetry();
  }

  /** Waits until both connections are up, or fails with an error naming the broker (never its password). */
  async connect(): Promise<void> {
    const { transport, managers } = await this.open();
    const timeout = this.options.connectTimeoutMs ?? WARREN_DEFAULTS.connectTimeoutMs;
    let lastError: Error | undefined;
    let fatal: (err: Error) => void = () => undefined;
    const onFailed = ({ err }: { err: Error }) => {
      lastError = err;
      // Retrying cannot fix refused credentials or a missing vhost: fail the boot now.
      const unrecoverable = transport.unrecoverableConnectError(err);
      if (unrecoverable) fatal(unrecoverable);
    };
    const roles = Object.values(managers);
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
      startTelemetry();
    } catch (err) {
      await this.close();
      const timedOut = err === CONNECT_TIMEOUT;
      const cause = timedOut && lastError ? lastError : err;
      const reason = cause instanceof Error ? redactCredentials(cause.message) : String(cause);
      const when = timedOut ? `within ${timeout} ms` : 'at boot';
      const brokers = this.urls.map((url) => transport.describeUrl(url)).join(', ');
      // The default connection's error reads as it always has; a named one says whose it is.
      const whose = this.name === DEFAULT_CONNECTION ? '' : `${this.label}: `;
      throw new WarrenConnectionError(`${whose}Cannot connect to RabbitMQ at ${brokers} ${when}: ${reason}`);
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
  createChannel(role: ConnectionRole, options: CreateChannelOpts, onRefused?: (err: Error) => void): ChannelWrapper {
    const { transport, managers } = this.opened();
    const manager = managers[role];
    const channel = manager.createChannel(options);
    const name = options.name ?? role;
    channel.on('error', (err: Error) => {
      if (!this.closed) this.logger.error(`channel "${name}": ${redactCredentials(err.message)}`);
    });
    const delay = this.options.reconnectDelayMs ?? WARREN_DEFAULTS.reconnectDelayMs;
    const stopReopening = reopenWhenRefused(channel, manager, transport, delay, (err) => {
      onRefused?.(err);
      // A warning: whoever's operation the broker refused gets the error itself (a publish's
      // PublishError, a declaration's TopologyError); this line says what happens to the channel.
      if (!this.closed) {
        this.logger.warn(
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

  /**
   * Runs `op` on a plain channel of its own, opened on the role's live connection and closed
   * afterwards: for one-off operations beside Warren's channels (a test's clean-up). Nothing
   * re-creates it after a reconnect, and a refusal closes only it.
   */
  async withChannel<T>(role: ConnectionRole, op: (channel: Channel) => Promise<T>): Promise<T> {
    const live = this.link?.managers[role].connection;
    if (!live) throw new WarrenConnectionError(`${this.label}: the ${role} connection is not up`);
    const channel = await live.createChannel();
    channel.on('error', () => undefined);
    try {
      return await op(channel);
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Whether the role's connection is up; without a role, whether both are. */
  isConnected(role?: ConnectionRole): boolean {
    const managers = this.link?.managers;
    if (!managers) return false;
    return role ? managers[role].isConnected() : managers.consume.isConnected() && managers.publish.isConnected();
  }

  /**
   * Whether the role's connection is up, the node it is on (the URL of `urls` it connected to,
   * without credentials: on a cluster, which node an operator would look at), whether the broker
   * blocks it (a memory or disk alarm: publishes on it stall), and how many channels Warren keeps
   * on it.
   */
  stats(role: ConnectionRole): { connected: boolean; node?: string; blocked: boolean; channels: number } {
    const manager = this.link?.managers[role];
    const connected = manager?.isConnected() ?? false;
    return {
      connected,
      ...(connected && this.nodes[role] !== undefined ? { node: this.nodes[role] } : {}),
      blocked: connected && this.blocked[role] !== undefined,
      channels: manager?.channelCount ?? 0,
    };
  }

  /** The node the role's connection is on (its URL without credentials), or undefined while it is down. */
  nodeOf(role: ConnectionRole): string | undefined {
    return this.isConnected(role) ? this.nodes[role] : undefined;
  }

  /** Why the broker blocks the role's connection, or undefined when it does not. */
  blockedReason(role: ConnectionRole): string | undefined {
    return this.isConnected(role) ? this.blocked[role] : undefined;
  }

  /**
   * How many times the role's connection has come up: 1 after the boot, one more after each
   * reconnect. Equal before and after something means it kept its connection throughout.
   */
  connectionGeneration(role: ConnectionRole): number {
    return this.generations[role];
  }

  /**
   * Calls `listener` on each `event` of the role's connection, from now on (also when called
   * before `connect()`). Returns the function that stops it.
   */
  onEvent<E extends ConnectionEvent>(
    role: ConnectionRole,
    event: E,
    listener: (payload: ConnectionEvents[E]) => void,
  ): () => void {
    const relay: Relay = (payload) => listener(this.eventPayload(event, payload) as ConnectionEvents[E]);
    const waiting: [ConnectionRole, ConnectionEvent, Relay] = [role, event, relay];
    if (this.link) this.link.managers[role].on(event, relay);
    else this.waitingListeners.add(waiting);
    return () => {
      this.waitingListeners.delete(waiting);
      this.link?.managers[role].off(event, relay);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const remove of this.gauges) remove();
    // A channel waiting to be reopened must not hold the process up after the app has closed.
    for (const stop of this.reopenings) stop();
    const link = this.link ?? (await this.opening?.catch(() => undefined));
    // Bounded whatever the broker does: a connection it blocks is cut after shutdownTimeoutMs.
    const timeout = this.options.shutdownTimeoutMs ?? WARREN_DEFAULTS.shutdownTimeoutMs;
    if (link) await Promise.all(Object.values(link.managers).map((m) => link.transport.closeManager(m, timeout)));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  private open(): Promise<Link> {
    this.opening ??= this.openLink();
    return this.opening;
  }

  private opened(): Link {
    if (!this.link) throw new WarrenConnectionError(`${this.label}: connect() first`);
    return this.link;
  }

  /** Loads the transport of the URLs (which checks them) and makes the two connection managers. */
  private async openLink(): Promise<Link> {
    const transport = await transportFor(this.urls);
    if (this.closed) throw new WarrenConnectionError(`${this.label}: closed before it connected`);
    const name = connectionNameOf(this.options);
    // Two named connections on one broker must be told apart in its management UI.
    const connectionName =
      this.options.clientProvidedName ??
      this.options.connectionName ??
      (name !== DEFAULT_CONNECTION ? `${WARREN_DEFAULTS.connectionName}-${name}` : WARREN_DEFAULTS.connectionName);
    const heartbeat = this.options.heartbeatSeconds ?? WARREN_DEFAULTS.heartbeatSeconds;
    const reconnect = (this.options.reconnectDelayMs ?? WARREN_DEFAULTS.reconnectDelayMs) / 1000;
    const describe = (url: unknown) => (typeof url === 'string' ? transport.describeUrl(url) : 'broker');
    for (const warning of this.security.warnings) this.logger.warn(warning);
    const make = (role: ConnectionRole) => {
      const manager = transport.createConnectionManager(this.urls, {
        heartbeatIntervalInSeconds: heartbeat,
        reconnectTimeInSeconds: reconnect,
        connectionOptions: {
          ...this.security.socketOptions,
          // Nagle's algorithm holds small frames back ~40 ms waiting for an ACK: every
          // request/reply round trip would pay it.
          noDelay: true,
          clientProperties: { connection_name: `${connectionName}:${role}` },
        },
      });
      manager.on('connect', ({ url }) => {
        // A new connection starts unblocked: the broker says so again if its alarm still holds.
        this.blocked[role] = undefined;
        this.nodes[role] = describe(url);
        this.generations[role]++;
        this.logger.log(`${role} connection up: ${this.nodes[role]}`);
      });
      manager.on('disconnect', ({ err }) => {
        if (!this.closed) this.logger.warn(`${role} connection lost: ${redactCredentials(err?.message ?? 'closed')}`);
      });
      manager.on('connectFailed', ({ err, url }) => {
        if (!this.closed) {
          // In the words the boot would fail with (a TLS failure's, not OpenSSL's error stack).
          const why = transport.unrecoverableConnectError(err)?.message ?? err.message;
          this.logger.warn(`${role} connection to ${describe(url)} failed: ${redactCredentials(why)}`);
        }
      });
      manager.on('blocked', ({ reason }) => {
        this.blocked[role] = reason || 'blocked';
        this.logger.warn(`${role} connection blocked by the broker: ${reason}`);
      });
      manager.on('unblocked', () => {
        this.blocked[role] = undefined;
        this.logger.log(`${role} connection unblocked by the broker`);
      });
      return manager;
    };
    const link: Link = { transport, managers: { consume: make('consume'), publish: make('publish') } };
    this.link = link;
    for (const [role, event, relay] of this.waitingListeners) link.managers[role].on(event, relay);
    this.waitingListeners.clear();
    return link;
  }

  /** An event's payload as listeners get it: no client-library objects, no credentials. */
  private eventPayload(event: ConnectionEvent, payload: Parameters<Relay>[0]): ConnectionEvents[ConnectionEvent] {
    const url = typeof payload?.url === 'string' ? this.link!.transport.describeUrl(payload.url) : 'broker';
    switch (event) {
      case 'connect':
        return { url };
      case 'disconnect':
        return { err: payload?.err };
      case 'connectFailed':
        return { err: payload!.err!, url };
      case 'blocked':
        return { reason: payload?.reason ?? '' };
      case 'unblocked':
        return undefined;
    }
  }
}

import type { AmqpConnectionManager, AmqpConnectionManagerOptions, ChannelWrapper } from 'amqp-connection-manager';

/**
 * What Warren asks of the thing that carries its messages: RabbitMQ through amqplib and
 * amqp-connection-manager (`amqp-transport.ts`), or the in-memory broker (`memory/`). Both hand
 * out amqp-connection-manager's interfaces, so everything above this seam runs the same code on
 * either; what differs between them is asked here, never decided by looking at a URL.
 */
export interface Transport {
  /**
   * Why `urls` (every one of this transport's scheme or not) cannot be one connection's list of
   * brokers, or undefined when they can.
   */
  urlsProblem(urls: readonly string[]): string | undefined;

  /** The broker a URL names, without credentials: for log lines and error messages. */
  describeUrl(url: string): string;

  /** A connection manager for `urls`, not yet connected. */
  createConnectionManager(urls: string[], options: AmqpConnectionManagerOptions): AmqpConnectionManager;

  /**
   * Why connecting can never succeed, from a failed attempt's error (refused credentials...), or
   * undefined when a retry may succeed.
   */
  unrecoverableConnectError(err: Error): Error | undefined;

  /**
   * Opens a fresh channel in `wrapper`, with every setup re-run, after the broker closed its
   * channel while the connection stayed up (channel-reopening.ts).
   */
  reopenChannel(wrapper: ChannelWrapper, manager: AmqpConnectionManager): void;

  /**
   * Closes a manager for good, without waiting on a link that is already dead, nor more than
   * `timeoutMs` on one the broker no longer reads (a memory or disk alarm blocks it): then the link
   * is cut.
   */
  closeManager(manager: AmqpConnectionManager, timeoutMs: number): Promise<void>;
}

/** A URL's scheme, lower case, without `://`; undefined when it has none. */
export function schemeOf(url: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
}

import { EventEmitter } from 'node:events';
import { type BrokerRefusal, connectionClosed, IllegalOperationError } from './amqp-wire.js';
import type { MemoryBroker } from './broker.js';
import { MemoryChannel } from './channel.js';

/**
 * An amqplib `ChannelModel` (a connection) on the in-memory broker.
 *
 * Everything the broker sends to the client goes through `send()`: frames queued in order and
 * handed over on a later turn of the event loop, as a socket would. A client callback that
 * throws while handling a frame takes the connection down, as it does with amqplib.
 */
export class MemoryConnection extends EventEmitter {
  private clientState: 'open' | 'closing' | 'closed' = 'open';
  private serverOpen = true;
  /** Every channel the client has not yet seen closed. */
  private readonly channels = new Set<MemoryChannel>();
  /** Every channel the broker still serves. */
  private readonly serverChannels = new Set<MemoryChannel>();
  private outbox: (() => void)[] = [];
  private flushScheduled = false;
  /**
   * An open connection keeps the process alive, as amqplib's socket does: an app that only
   * consumes must not exit when its main function returns.
   */
  private readonly keepAlive = setInterval(() => undefined, 2 ** 31 - 1);

  constructor(
    private readonly broker: MemoryBroker,
    /** The client's `connection_name`. */
    readonly clientName: string | undefined,
    /** The authenticated user, for `user_id` checks. */
    readonly user: string,
  ) {
    super();
  }

  createChannel(): Promise<MemoryChannel> {
    return this.openChannel(false);
  }

  createConfirmChannel(): Promise<MemoryChannel> {
    return this.openChannel(true);
  }

  close(): Promise<void> {
    if (this.clientState !== 'open') {
      return Promise.reject(new IllegalOperationError(`Connection ${this.clientState}`));
    }
    this.clientState = 'closing';
    this.serverClose();
    return new Promise<void>((resolve) =>
      this.send(() => {
        resolve();
        this.toClosed(undefined);
      }),
    );
  }

  // ---- the broker's side ----------------------------------------------------------------------

  /** Queues a frame for the client. */
  send(frame: () => void): void {
    if (this.clientState === 'closed') return;
    this.outbox.push(frame);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** The broker closes the connection (management close, reset, a connection-level error). */
  closeByBroker(refusal: BrokerRefusal): void {
    if (!this.serverOpen) return;
    this.serverClose();
    this.send(() => {
      if (this.clientState === 'closed') return;
      const error = connectionClosed(refusal);
      // amqplib reports a forced close as 'close' with the error, and only fatal ones as 'error' too.
      if (refusal.code !== 320 && refusal.code !== 200) this.emit('error', error);
      this.toClosed(error);
    });
  }

  /** A channel the broker no longer serves. */
  forget(channel: MemoryChannel): void {
    this.serverChannels.delete(channel);
  }

  /**
   * The client's side breaks (a callback threw, or an 'error' nobody listened to): like amqplib's
   * frame loop, it reports 'error' and closes the connection. Without an 'error' listener that
   * error is thrown, as it would be out of amqplib's socket handler.
   */
  fail(error: Error): void {
    if (this.clientState === 'closed') throw error;
    this.serverClose();
    this.outbox = [];
    this.clientState = 'closed';
    try {
      this.emit('error', error);
    } finally {
      this.closeChannels();
      this.emit('close', error);
    }
  }

  // ---- internals ------------------------------------------------------------------------------

  private async openChannel(confirm: boolean): Promise<MemoryChannel> {
    if (this.clientState !== 'open') throw new IllegalOperationError(`Connection ${this.clientState}`);
    const channel = new MemoryChannel(this, this.broker, confirm);
    this.channels.add(channel);
    channel.once('close', () => this.channels.delete(channel));
    if (this.serverOpen) this.serverChannels.add(channel);
    else channel.serverClose();
    return channel.open();
  }

  private serverClose(): void {
    if (!this.serverOpen) return;
    this.serverOpen = false;
    clearInterval(this.keepAlive);
    for (const channel of [...this.serverChannels]) channel.serverClose();
    this.broker.disconnected(this);
  }

  private flush(): void {
    this.flushScheduled = false;
    const frames = this.outbox;
    this.outbox = [];
    for (const frame of frames) {
      if (this.clientState === 'closed') return;
      try {
        frame();
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
    }
  }

  private toClosed(error: Error | undefined): void {
    if (this.clientState === 'closed') return;
    this.clientState = 'closed';
    this.outbox = [];
    this.closeChannels();
    this.emit('close', error);
  }

  private closeChannels(): void {
    for (const channel of [...this.channels]) channel.toClosed();
    this.channels.clear();
  }
}

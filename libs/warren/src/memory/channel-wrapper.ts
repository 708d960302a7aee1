import type { CreateChannelOpts, SetupFunc } from 'amqp-connection-manager';
import type { Options } from 'amqplib';
import { EventEmitter } from 'node:events';
import type { MemoryChannel } from './channel.js';
import type { MemoryConnection } from './connection.js';

/** Reply codes after which amqp-connection-manager stops waiting for a reconnect to resend. */
const IRRECOVERABLE = [403, 404, 406, 501, 502, 503, 504, 505, 530, 540, 541];

interface QueuedPublish {
  exchange: string;
  routingKey: string;
  content: Buffer;
  options: Options.Publish;
  resolve(sent: boolean): void;
  reject(err: Error): void;
}

/** The connection manager as its channel wrappers see it. */
export interface WrapperHost extends EventEmitter {
  readonly connection: MemoryConnection | undefined;
}

/**
 * amqp-connection-manager's `ChannelWrapper`, for the in-memory broker: same life cycle (a fresh
 * channel after every reconnect with every setup run on it, publishes queued while disconnected
 * and sent once set up, a channel closed by the broker left closed until the next reconnect),
 * same events ('connect', 'error', 'close'). Only what Warren uses of it: Buffer contents, no
 * publish timeouts.
 */
export class MemoryChannelWrapper extends EventEmitter {
  readonly name?: string;
  private setups: SetupFunc[] = [];
  private messages: QueuedPublish[] = [];
  private unconfirmed = new Set<QueuedPublish>();
  private channel?: MemoryChannel;
  private settingUp?: Promise<void>;
  private working = false;
  private workerNumber = 0;
  private irrecoverableCode?: number;
  private readonly confirm: boolean;

  constructor(
    private readonly host: WrapperHost,
    options: CreateChannelOpts = {},
  ) {
    super();
    this.name = options.name;
    this.confirm = options.confirm ?? true;
    if (options.setup) this.setups.push(options.setup);
    if (host.connection) void this.onConnect({ connection: host.connection });
    host.on('connect', this.onConnect);
    host.on('disconnect', this.onDisconnect);
  }

  /** Adds a setup; runs it now if connected (its error rejects the returned Promise) and after every reconnect. */
  addSetup(setup: SetupFunc): Promise<void> {
    return (this.settingUp ?? Promise.resolve()).then(() => {
      this.setups.push(setup);
      return this.channel ? runSetup(setup, this.channel) : undefined;
    });
  }

  /** Removes a setup: later reconnects no longer run it. */
  removeSetup(setup: SetupFunc): Promise<void> {
    this.setups = this.setups.filter((s) => s !== setup);
    return (this.settingUp ?? Promise.resolve()).then(() => undefined);
  }

  /** Resolves when the channel is (next) connected and set up. */
  waitForConnect(): Promise<void> {
    return this.channel && !this.settingUp
      ? Promise.resolve()
      : new Promise((resolve) => this.once('connect', () => resolve()));
  }

  /** Queues a publish; resolves once sent (or, on a confirm channel, once the broker confirmed it). */
  publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish = {}): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.messages.push({ exchange, routingKey, content, options, resolve, reject });
      this.startWorker();
    });
  }

  /** Messages queued and not yet sent. */
  queueLength(): number {
    return this.messages.length;
  }

  /** Closes the channel for good: unsent and unconfirmed publishes are rejected. */
  close(): Promise<void> {
    return Promise.resolve().then(() => {
      this.working = false;
      for (const message of [...this.messages, ...this.unconfirmed]) message.reject(new Error('Channel closed'));
      this.messages = [];
      this.unconfirmed.clear();
      this.host.removeListener('connect', this.onConnect);
      this.host.removeListener('disconnect', this.onDisconnect);
      const closing = this.channel?.close();
      this.channel = undefined;
      this.emit('close');
      return closing;
    });
  }

  /** Opens a channel again after the broker closed it, unless one is open (see channel-reopening.ts). */
  reopen(): void {
    const connection = this.host.connection;
    if (!this.channel && connection) void this.onConnect({ connection });
  }

  private readonly onConnect = async ({ connection }: { connection: MemoryConnection }): Promise<void> => {
    this.irrecoverableCode = undefined;
    try {
      const channel = this.confirm ? await connection.createConfirmChannel() : await connection.createChannel();
      this.channel = channel;
      channel.on('close', () => {
        // A channel closed by the broker stays closed until the next reconnect, as with amqp-connection-manager.
        if (this.channel === channel) this.channel = undefined;
      });
      this.settingUp = Promise.all(
        this.setups.map((setup) =>
          runSetup(setup, channel).catch((err: Error) => {
            if (err.name === 'IllegalOperationError') return;
            this.emit('error', err, { name: this.name });
          }),
        ),
      ).then(() => {
        this.settingUp = undefined;
      });
      await this.settingUp;
      if (!this.channel) return;
      this.startWorker();
      this.emit('connect');
    } catch (err) {
      this.emit('error', err, { name: this.name });
      this.settingUp = undefined;
      this.channel = undefined;
    }
  };

  private readonly onDisconnect = ({ err }: { err?: Error & { code?: number } }): void => {
    this.irrecoverableCode = err?.code;
    this.channel = undefined;
    this.settingUp = undefined;
    this.working = false;
  };

  private startWorker(): void {
    if (!this.working && this.messages.length > 0 && !this.settingUp && this.channel) {
      this.working = true;
      this.workerNumber++;
      this.publishQueued(this.workerNumber);
    }
  }

  private publishQueued(workerNumber: number): void {
    const channel = this.channel;
    if (!channel || this.settingUp || !this.working || workerNumber !== this.workerNumber) {
      this.working = false;
      return;
    }
    try {
      // In batches, so a long backlog does not starve the event loop.
      let sendsLeft = 1000;
      while (this.messages.length > 0 && sendsLeft-- > 0) {
        const message = this.messages.shift()!;
        if (this.confirm) {
          this.unconfirmed.add(message);
          channel.publish(message.exchange, message.routingKey, message.content, message.options, (err) => {
            this.unconfirmed.delete(message);
            if (!err) message.resolve(true);
            else if (!this.channel && this.canWaitReconnection()) this.messages.push(message);
            else message.reject(err);
          });
        } else {
          channel.publish(message.exchange, message.routingKey, message.content, message.options);
          message.resolve(true);
        }
      }
      if (this.messages.length > 0) setImmediate(() => this.publishQueued(workerNumber));
      else this.working = false;
    } catch (err) {
      this.working = false;
      this.emit('error', err);
    }
  }

  private canWaitReconnection(): boolean {
    return this.irrecoverableCode === undefined || !IRRECOVERABLE.includes(this.irrecoverableCode);
  }
}

/** Runs a setup function; one that throws fails like one whose promise rejects. */
function runSetup(setup: SetupFunc, channel: MemoryChannel): Promise<void> {
  try {
    return Promise.resolve((setup as (channel: unknown) => unknown)(channel)).then(() => undefined);
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import type { Channel } from 'amqplib';
import { WarrenConnection } from '../connection/warren-connection.js';
import { Publisher } from '../publisher/publisher.js';
import { RpcClient } from '../rpc/rpc-client.js';
import type { WarrenModuleOptions } from '../warren.options.js';
import { WarrenConnectionError } from '../warren.errors.js';
import { DEFAULT_EVENTS_EXCHANGE, type WarrenTransportOptions } from './warren-server.js';

export type WarrenClientOptions = WarrenModuleOptions & WarrenTransportOptions;

/**
 * A @nestjs/microservices `ClientProxy` over Warren:
 * `ClientsModule.register([{ name: 'ORDERS', customClass: WarrenClientProxy, options: { url } }])`.
 *
 * - `send(pattern, data)` is an RPC call to the queue named by the pattern (`RpcClient.call`):
 *   `@MessagePattern` handlers of a `WarrenServer` and `@RpcHandler` handlers answer it. It emits
 *   the reply and completes; a remote error arrives as an `RpcRemoteError`, no reply within
 *   `rpc.timeoutMs` (default 10 s) as an `RpcTimeoutError`. Unsubscribing abandons the call.
 * - `emit(pattern, data)` publishes to the events exchange (default `warren.events`) with the
 *   pattern as routing key, and completes on the broker's confirm: `@EventPattern` handlers and
 *   `@Subscribe('warren.events', pattern)` handlers receive it.
 *
 * Payloads use Warren's codec (JSON), not Nest's serializers.
 */
export class WarrenClientProxy extends ClientProxy {
  private connection?: WarrenConnection;
  private rpc?: RpcClient;
  private publisher?: Publisher;
  private connecting?: Promise<void>;

  constructor(private readonly options: WarrenClientOptions) {
    super();
  }

  connect(): Promise<void> {
    this.connecting ??= this.open().catch((err: unknown) => {
      this.connecting = undefined;
      throw err;
    });
    return this.connecting;
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.rpc?.close();
    this.connecting = undefined;
    this.connection = this.rpc = this.publisher = undefined;
    await connection?.close();
  }

  /** The client's `WarrenConnection` (after `connect`). */
  unwrap<T = WarrenConnection>(): T {
    if (!this.connection) throw new WarrenConnectionError('WarrenClientProxy: not connected yet');
    return this.connection as T;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const abandon = new AbortController();
    this.rpc!.call(this.normalizePattern(packet.pattern), packet.data, { signal: abandon.signal }).then(
      (response) => callback({ response, isDisposed: true }),
      (err: unknown) => {
        if (!abandon.signal.aborted) callback({ err });
      },
    );
    return () => abandon.abort();
  }

  protected async dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    await this.publisher!.publish(
      this.options.eventsExchange ?? DEFAULT_EVENTS_EXCHANGE,
      this.normalizePattern(packet.pattern),
      packet.data,
    );
    return undefined as T;
  }

  private async open(): Promise<void> {
    const connection = new WarrenConnection(this.options);
    await connection.connect();
    // Publishing to an exchange nobody declared yet would close the publisher's channel: the
    // client declares the events exchange as the server does (topic, durable), after every reconnect.
    const exchange = this.options.eventsExchange ?? DEFAULT_EVENTS_EXCHANGE;
    const declarer = connection.createChannel('publish', {
      name: 'events-exchange',
      confirm: false,
      setup: (channel: Channel) => channel.assertExchange(exchange, 'topic', { durable: true }),
    });
    await declarer.waitForConnect();
    this.connection = connection;
    this.rpc = new RpcClient(connection, this.options);
    this.publisher = new Publisher(connection, this.options);
    this._status$.next('connected');
  }
}

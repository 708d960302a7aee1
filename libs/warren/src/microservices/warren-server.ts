import { type CustomTransportStrategy, type MessageHandler, Server } from '@nestjs/microservices';
import { isObservable, lastValueFrom } from 'rxjs';
import { WarrenConnection } from '../connection/warren-connection.js';
import { ConsumerRegistry } from '../consumer/consumer-registry.js';
import type { WarrenContext } from '../consumer/warren-context.js';
import { rpcSpec, type RpcHandlerOptions } from '../decorators/rpc-handler.decorator.js';
import { subscribeSpec, type SubscribeOptions } from '../decorators/subscribe.decorator.js';
import { RpcResponder } from '../rpc/rpc-responder.js';
import { RemoteHandlerError, WarrenConnectionError } from '../warren.errors.js';
import type { WarrenModuleOptions } from '../warren.options.js';

/** The transport id of `WarrenServer`: `@MessagePattern('x', WARREN_TRANSPORT)` in a hybrid app. */
export const WARREN_TRANSPORT = Symbol.for('nestjs-warren');

/** The exchange events go through when the options name none. */
export const DEFAULT_EVENTS_EXCHANGE = 'warren.events';

export interface WarrenTransportOptions {
  /** The topic exchange of events (`@EventPattern`, `ClientProxy.emit()`). Default `warren.events`. */
  eventsExchange?: string;
}

export interface WarrenServerOptions extends WarrenModuleOptions, WarrenTransportOptions {
  /**
   * Names the queue of each event pattern `<service>.<pattern>`: durable, shared by every instance
   * of the service (each event is handled once per service, as with the RMQ transport). Without
   * it, every instance gets every event on its own server-named, exclusive queue.
   */
  service?: string;
  /** Settings of the queues of `@MessagePattern` handlers (as `@RpcHandler` takes them). */
  messageQueues?: Pick<RpcHandlerOptions, 'durable' | 'arguments' | 'prefetch' | 'exposeErrorStack'>;
  /**
   * Settings of the queues of `@EventPattern` handlers, `failure` included (as `@Subscribe` takes
   * them: a named queue retries by default, a server-named one drops).
   */
  eventQueues?: Pick<SubscribeOptions, 'durable' | 'arguments' | 'prefetch' | 'failure'>;
}

/**
 * A @nestjs/microservices transport over Warren's topology:
 * `app.connectMicroservice({ strategy: new WarrenServer({ url }) })`.
 *
 * - `@MessagePattern('orders.get')` serves the RPC queue `orders.get` on the default exchange,
 *   exactly as `@RpcHandler('orders.get')` would: `RpcClient.call('orders.get', …)` and
 *   `WarrenClientProxy.send('orders.get', …)` reach it, and it replies with Warren's RPC wire.
 * - `@EventPattern('order.created')` binds a queue to the topic exchange `warren.events` with
 *   binding key `order.created` (wildcards `*`/`#` work): `WarrenClientProxy.emit()` and
 *   `Publisher.publish('warren.events', 'order.created', …)` reach it.
 *
 * Object patterns are turned into strings as Nest does (`{"cmd":"sum"}`, keys sorted). Handlers
 * get `(payload, WarrenContext)`; Nest's guards, interceptors, pipes and filters apply as to
 * any microservice handler. The topology is checked, declared, and only then consumed, with the
 * same rules and failure handling as Warren's own handlers.
 */
export class WarrenServer extends Server implements CustomTransportStrategy {
  override transportId = WARREN_TRANSPORT;
  // Events are awaited so that a failed one is rejected by Warren's failure policy instead of
  // only being logged.
  override readonly propagatesEventHandlerErrors = true;
  private connection?: WarrenConnection;
  private registry?: ConsumerRegistry;
  private readonly listeners: [string, (...args: unknown[]) => void][] = [];

  constructor(private readonly options: WarrenServerOptions) {
    super();
  }

  async listen(callback: (err?: unknown) => void): Promise<void> {
    try {
      const connection = new WarrenConnection(this.options);
      this.connection = connection;
      for (const [event, listener] of this.listeners) this.addListener(event, listener);
      await connection.connect();
      const registry = new ConsumerRegistry(connection, this.options);
      this.registry = registry;
      const responder = new RpcResponder(connection, this.options);
      const exchange = this.options.eventsExchange ?? DEFAULT_EVENTS_EXCHANGE;
      for (const [pattern, handler] of this.getHandlers()) {
        if (handler.isEventHandler) {
          const label = `@EventPattern(${pattern})`;
          const queue = this.options.service ? `${this.options.service}.${pattern}` : undefined;
          const spec = subscribeSpec(label, exchange, pattern, { type: 'topic', queue, ...this.options.eventQueues });
          registry.register(spec, label, (payload, context) => runEvent(handler, payload, context));
        } else {
          const label = `@MessagePattern(${pattern})`;
          const { exposeErrorStack = false, ...queueOptions } = this.options.messageQueues ?? {};
          const reply = responder.responderFor((payload, context) => handler(payload, context), label, {
            exposeErrorStack,
          });
          registry.register(rpcSpec(label, pattern, queueOptions, 'MessagePattern'), label, reply);
        }
      }
      await registry.start();
      this._status$.next('connected');
      callback();
    } catch (err) {
      await this.close();
      callback(err);
    }
  }

  async close(): Promise<void> {
    await this.registry?.beforeApplicationShutdown();
    await this.connection?.close();
    this.registry = undefined;
    this.connection = undefined;
  }

  /** Listens to the connection managers' events (`connect`, `disconnect`, `blocked`...), both roles. */
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- the signature of Server.on()
  on(event: string, callback: Function): void {
    const listener = callback as (...args: unknown[]) => void;
    this.listeners.push([event, listener]);
    if (this.connection) this.addListener(event, listener);
  }

  /** The server's `WarrenConnection` (after `listen`). */
  unwrap<T = WarrenConnection>(): T {
    if (!this.connection) throw new WarrenConnectionError('WarrenServer: not listening yet');
    return this.connection as T;
  }

  private addListener(event: string, listener: (...args: unknown[]) => void): void {
    this.connection!.manager('consume').on(event, listener);
    this.connection!.manager('publish').on(event, listener);
  }
}

/** Runs an event handler (and the others of its pattern, which Nest chains to it) to the end. */
async function runEvent(handler: MessageHandler, payload: unknown, context: WarrenContext): Promise<void> {
  try {
    const result = await handler(payload, context);
    if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
  } catch (err) {
    throw err instanceof Error ? err : new RemoteHandlerError(err);
  }
}

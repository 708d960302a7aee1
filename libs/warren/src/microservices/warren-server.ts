import { type CustomTransportStrategy, type MessageHandler, Server } from '@nestjs/microservices';
import { isObservable, lastValueFrom } from 'rxjs';
import { type ConnectionEvent, WarrenConnection } from '../connection/warren-connection.js';
import type { WarrenContext } from '../consumer/warren-context.js';
import { rpcSpec, type RpcHandlerOptions } from '../decorators/rpc-handler.decorator.js';
import { subscribeSpec, type SubscribeOptions } from '../decorators/subscribe.decorator.js';
import { Publisher } from '../publisher/publisher.js';
import { ConsumerLifecycle, type ServiceQueueMember } from '../registry/consumer-lifecycle.js';
import { DeliveryObservers } from '../registry/delivery-observers.js';
import { TopologyRegistry } from '../registry/topology-registry.js';
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
  /**
   * One durable queue for every `@EventPattern` of this server (a service queue): bound to every
   * pattern, each event dispatched to the handler whose pattern its routing key matches. Patterns
   * that can match one key fail the boot, unless one of them is `fallbackPattern`. Takes
   * precedence over the per-pattern queues of `service`.
   */
  eventsQueue?: string;
  /** With `eventsQueue`: the pattern whose handler gets the events no other pattern matches (e.g. `#`). */
  fallbackPattern?: string;
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
  private consumers?: ConsumerLifecycle;
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
      // The parts WarrenModule would provide, built here: a transport strategy lives outside DI.
      const topology = new TopologyRegistry(connection, this.options);
      const publisher = new Publisher(connection, this.options);
      const consumers = new ConsumerLifecycle(connection, topology, publisher, new DeliveryObservers(), this.options);
      this.consumers = consumers;
      const responder = new RpcResponder(connection, this.options);
      const exchange = this.options.eventsExchange ?? DEFAULT_EVENTS_EXCHANGE;
      const { eventsQueue, fallbackPattern } = this.options;
      const events: ServiceQueueMember[] = [];
      for (const [pattern, handler] of this.getHandlers()) {
        if (handler.isEventHandler) {
          const label = `@EventPattern(${pattern})`;
          const queue = eventsQueue ?? (this.options.service ? `${this.options.service}.${pattern}` : undefined);
          const who = `@EventPattern() on pattern "${pattern}"`;
          const spec = subscribeSpec(who, exchange, pattern, {
            exchangeType: 'topic',
            queue,
            ...this.options.eventQueues,
            ...(pattern === fallbackPattern ? { fallback: true } : {}),
          });
          const handle = (payload: unknown, context: WarrenContext) => runEvent(handler, payload, context);
          if (eventsQueue) events.push({ spec, label, handle });
          else consumers.register(spec, label, handle);
        } else {
          const label = `@MessagePattern(${pattern})`;
          const { exposeErrorStack = false, ...queueOptions } = this.options.messageQueues ?? {};
          const reply = responder.responderFor((payload, context) => handler(payload, context), label, {
            exposeErrorStack,
          });
          const spec = rpcSpec(`@MessagePattern() on pattern "${pattern}"`, pattern, queueOptions);
          consumers.register(spec, label, reply);
        }
      }
      if (events.length === 1) consumers.register(events[0].spec, events[0].label, events[0].handle);
      else if (events.length > 1) consumers.registerService(events);
      await consumers.start();
      this._status$.next('connected');
      callback();
    } catch (err) {
      await this.close();
      callback(err);
    }
  }

  async close(): Promise<void> {
    await this.consumers?.stop();
    await this.connection?.close();
    this.consumers = undefined;
    this.connection = undefined;
  }

  /** Listens to both connections' events (`connect`, `disconnect`, `blocked`...: `WarrenConnection.onEvent`). */
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
    // Nest's signature takes any name: one the connections never emit is never called.
    this.connection!.onEvent('consume', event as ConnectionEvent, listener);
    this.connection!.onEvent('publish', event as ConnectionEvent, listener);
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

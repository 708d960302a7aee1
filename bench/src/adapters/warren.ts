// nestjs-warren as an app uses it: a Nest application context with WarrenModule, a provider whose
// methods carry @Subscribe (named durable queue on a topic exchange) or @RpcHandler, and the
// injected Publisher / RpcClient. Imported from the built package (`npm run build:lib`).
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext, type ModuleMetadata } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Publisher, RpcClient, RpcHandler, Subscribe, WarrenModule } from 'nestjs-warren';
import {
  BaseAdapter,
  type BenchEvent,
  type BrokerSpec,
  handlerKey,
  ModelledStore,
  handlerQueue,
  type RpcReply,
  type RpcRequest,
  serve,
} from '../harness.js';
import { addDecoratedMethod } from './decorate.js';

export type ReplyMode = 'direct-reply-to' | 'exclusive';

/** What an app has beside the measured handlers (the unused-features scenario's idle features). */
export interface AppExtras {
  imports?: NonNullable<ModuleMetadata['imports']>;
  providers?: NonNullable<ModuleMetadata['providers']>;
}

export class WarrenAdapter extends BaseAdapter {
  readonly name: string;
  private app?: INestApplicationContext;
  private publisher?: Publisher;
  private client?: RpcClient;
  private stopSdk?: () => Promise<void>;

  constructor(
    private readonly replyQueue: ReplyMode,
    /** Registers the OpenTelemetry SDK before the app boots (system `warren-otel`). */
    private readonly openTelemetry = false,
    /** Store scenario: a batch handler (100 per call) instead of one message per call. */
    private readonly batch = false,
    /** More modules and providers in the app, on the trial's names; none in the matrix's systems. */
    private readonly extras?: (spec: BrokerSpec) => AppExtras,
  ) {
    super();
    this.name = openTelemetry
      ? 'warren-otel'
      : batch
        ? 'warren-batch'
        : replyQueue === 'exclusive'
          ? 'warren-exclusive'
          : 'warren';
  }

  async setup(spec: BrokerSpec): Promise<void> {
    this.spec = spec;
    if (this.openTelemetry) this.stopSdk = (await import('./otel-sdk.js')).registerOpenTelemetrySdk();
    const deliver = this.deliver;

    @Injectable()
    class EventHandlers {
      @Subscribe(spec.exchange, spec.routingKey, { queue: spec.queue, prefetch: spec.prefetch })
      onEvent(event: BenchEvent): void {
        deliver(event);
      }
    }

    @Injectable()
    class RpcHandlers {
      @RpcHandler(spec.rpcQueue, { durable: false, prefetch: spec.prefetch })
      serve(request: RpcRequest): RpcReply {
        return serve(request);
      }
    }

    // Store scenario: every message written to the store, in one call each or one per batch.
    const store = new ModelledStore(spec.storePool, spec.storeCallMs);
    @Injectable()
    class StoreHandler {
      @Subscribe(spec.exchange, spec.routingKey, { queue: spec.queue, prefetch: spec.prefetch })
      async onEvent(event: BenchEvent): Promise<void> {
        await store.write(1);
        deliver(event);
      }
    }
    @Injectable()
    class BatchStoreHandler {
      @Subscribe(spec.exchange, spec.routingKey, {
        queue: spec.queue,
        prefetch: Math.max(spec.prefetch, 200),
        batch: { size: 100, timeoutMs: 20 },
      })
      async onEvents(events: BenchEvent[]): Promise<void> {
        await store.write(events.length);
        for (const event of events) deliver(event);
      }
    }

    // Boot scenario: `spec.handlers` methods, each `@Subscribe(exchange, key_i, { queue: queue_i })`.
    class BootHandlers {}
    for (let i = 0; i < spec.handlers; i++) {
      addDecoratedMethod(BootHandlers, `on${i}`, (event: BenchEvent) => this.deliverTo(i, event), [
        Subscribe(spec.exchange, handlerKey(i), { queue: handlerQueue(spec, i), prefetch: spec.prefetch }),
      ]);
    }
    Injectable()(BootHandlers);
    const handlers = {
      pubsub: EventHandlers,
      boot: BootHandlers,
      'rpc-seq': RpcHandlers,
      'rpc-conc': RpcHandlers,
      store: this.batch ? BatchStoreHandler : StoreHandler,
    };

    const extras = this.extras?.(spec) ?? {};
    @Module({
      imports: [
        WarrenModule.forRoot({
          url: spec.url,
          prefetch: spec.prefetch,
          connectionName: `bench:${spec.tag}`,
          rpc: { replyQueue: this.replyQueue },
        }),
        ...(extras.imports ?? []),
      ],
      providers: [handlers[spec.scenario], ...(extras.providers ?? [])],
    })
    class BenchModule {}

    this.app = await NestFactory.createApplicationContext(BenchModule, { logger: ['error', 'warn'] });
    this.publisher = this.app.get(Publisher);
    this.client = this.app.get(RpcClient);
  }

  /** The booted app, for a trial that inspects it (undefined before setup()). */
  get application(): INestApplicationContext | undefined {
    return this.app;
  }

  protected publish(event: BenchEvent, routingKey: string): Promise<void> {
    return this.publisher!.publish(this.spec.exchange, routingKey, event);
  }

  protected call(request: RpcRequest): Promise<RpcReply> {
    return this.client!.call<RpcReply>(this.spec.rpcQueue, request);
  }

  async teardown(): Promise<void> {
    await this.app?.close();
    await this.stopSdk?.();
  }
}

// One trial of the service-queue scenario in a fresh process: eight @Subscribe handlers, each on
// its own routing key, either on eight durable queues (one consumer each) or on one queue (a
// service queue: one consumer, Warren dispatching each message to the method whose binding
// matches its routing key). Messages go round robin over the eight keys; each handler checks it
// only gets its own.
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Publisher, Subscribe, WarrenModule } from 'nestjs-warren';
import { addDecoratedMethod } from '../adapters/decorate.js';
import { BaseAdapter, handlerQueue, type BenchEvent, type BrokerSpec, type RpcReply } from '../harness.js';
import { pubsubTrialMain } from '../side/pubsub-matrix.js';
import { HANDLERS, keyOf, type ServiceQueueVariant } from './variants.js';

class ServiceQueueAdapter extends BaseAdapter {
  readonly name = 'warren';
  private app?: INestApplicationContext;
  private publisher?: Publisher;
  private misrouted = 0;

  constructor(private readonly variant: ServiceQueueVariant) {
    super();
  }

  async setup(spec: BrokerSpec): Promise<void> {
    this.spec = spec;
    class Handlers {}
    for (let i = 0; i < HANDLERS; i++) {
      const queue = this.variant === 'service-queue' ? spec.queue : handlerQueue(spec, i);
      // spec.prefetch is already this variant's (run.ts).
      addDecoratedMethod(
        Handlers,
        `on${i}`,
        (event: BenchEvent) => {
          if (event.id % HANDLERS !== i) this.misrouted++;
          this.deliver(event);
        },
        [Subscribe(spec.exchange, keyOf(i), { queue, prefetch: spec.prefetch })],
      );
    }
    Injectable()(Handlers);

    @Module({
      imports: [WarrenModule.forRoot({ url: spec.url, prefetch: spec.prefetch, connectionName: `bench:${spec.tag}` })],
      providers: [Handlers],
    })
    class BenchModule {}

    this.app = await NestFactory.createApplicationContext(BenchModule, { logger: ['error', 'warn'] });
    this.publisher = this.app.get(Publisher);
  }

  /** Round robin over the handlers' keys, whatever key the harness passes. */
  protected publish(event: BenchEvent): Promise<void> {
    return this.publisher!.publish(this.spec.exchange, keyOf(event.id % HANDLERS), event);
  }

  protected call(): Promise<RpcReply> {
    throw new Error('the service-queue scenario makes no RPC calls');
  }

  extra(): Record<string, number> {
    return { misrouted: this.misrouted };
  }

  async teardown(): Promise<void> {
    await this.app?.close();
  }
}

pubsubTrialMain<ServiceQueueVariant>(async ({ variant }) => new ServiceQueueAdapter(variant));

// One trial of the batch scenario in a fresh process: a Nest app whose handler takes one message
// per call, or a batch of 10 or 100 (Warren's `batch`, golevelup's `batchOptions`), on a durable
// queue of a topic exchange, measured by the harness's pub/sub (persistent ~1 KB messages,
// confirms, ack after the handler). The handler only records each message: what is measured is
// what the library costs per message, not a store's round trips (the store scenario has those).
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Publisher, Subscribe, WarrenModule } from 'nestjs-warren';
import { BaseAdapter, type Adapter, type BenchEvent, type BrokerSpec, type RpcReply } from '../harness.js';
import { pubsubTrialMain } from '../side/pubsub-matrix.js';
import { BATCH_TIMEOUT_MS, batchPrefetch, batchSizeOf, type BatchVariant } from './variants.js';

class WarrenBatchAdapter extends BaseAdapter {
  readonly name = 'warren';
  private app?: INestApplicationContext;
  private publisher?: Publisher;

  constructor(private readonly size: number) {
    super();
  }

  async setup(spec: BrokerSpec): Promise<void> {
    this.spec = spec;
    const deliver = this.deliver;
    const prefetch = batchPrefetch(spec.prefetch, this.size);

    @Injectable()
    class Single {
      @Subscribe(spec.exchange, spec.routingKey, { queue: spec.queue, prefetch })
      onEvent(event: BenchEvent): void {
        deliver(event);
      }
    }

    const size = this.size;
    @Injectable()
    class Batched {
      @Subscribe(spec.exchange, spec.routingKey, {
        queue: spec.queue,
        prefetch,
        batch: { size: size || 1, timeoutMs: BATCH_TIMEOUT_MS },
      })
      onEvents(events: BenchEvent[]): void {
        for (const event of events) deliver(event);
      }
    }

    @Module({
      imports: [WarrenModule.forRoot({ url: spec.url, prefetch, connectionName: `bench:${spec.tag}` })],
      providers: [this.size ? Batched : Single],
    })
    class BenchModule {}

    this.app = await NestFactory.createApplicationContext(BenchModule, { logger: ['error', 'warn'] });
    this.publisher = this.app.get(Publisher);
  }

  protected publish(event: BenchEvent, routingKey: string): Promise<void> {
    return this.publisher!.publish(this.spec.exchange, routingKey, event);
  }

  protected call(): Promise<RpcReply> {
    throw new Error('the batch scenario makes no RPC calls');
  }

  async teardown(): Promise<void> {
    await this.app?.close();
  }
}

pubsubTrialMain<BatchVariant>(async ({ variant }) => {
  const size = batchSizeOf(variant);
  if (!variant.startsWith('golevelup')) return new WarrenBatchAdapter(size);
  // Plain ESM beside golevelup's own node_modules (NestJS 11), as the matrix's golevelup adapter.
  const url = new URL('../../../golevelup/batch.mjs', import.meta.url);
  const module = (await import(url.href)) as { create(size: number): Adapter };
  return module.create(size);
});

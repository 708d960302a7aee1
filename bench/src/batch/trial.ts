// One trial of the batch scenario in a fresh process: a Nest app whose handler takes one message
// per call, or a batch of 10 or 100 (Warren's `batch`, golevelup's `batchOptions`), on a durable
// queue of a topic exchange, measured by the harness's pub/sub (persistent ~1 KB messages,
// confirms, ack after the handler). The handler only records each message: what is measured is
// what the library costs per message, not a store's round trips (the store scenario has those).
import { Injectable } from '@nestjs/common';
import { Subscribe } from 'nestjs-warren';
import type { Adapter, BenchEvent, BrokerSpec } from '../harness.js';
import { pubsubTrialMain } from '../side/pubsub-matrix.js';
import { WarrenPubsubAdapter } from '../side/warren-pubsub.js';
import { BATCH_TIMEOUT_MS, batchPrefetch, batchSizeOf, type BatchVariant } from './variants.js';

class WarrenBatchAdapter extends WarrenPubsubAdapter {
  constructor(private readonly size: number) {
    super('batch');
  }

  protected handlers(spec: BrokerSpec) {
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

    return { providers: [this.size ? Batched : Single], prefetch };
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

// One trial of the cluster scenario in a fresh process, connected to node 0 of the bench's 3-node
// cluster: pub/sub (persistent ~1 KB messages, confirms, ack after the handler) through a topic
// exchange to a durable classic or quorum queue, by Warren (`queueType` on @Subscribe) or by the
// matrix's raw amqplib adapter on two connections (`x-queue-type` in its queue's arguments).
import { Injectable } from '@nestjs/common';
import { Subscribe } from 'nestjs-warren';
import { RawAdapter } from '../adapters/raw.js';
import type { BenchEvent, BrokerSpec } from '../harness.js';
import { pubsubTrialMain } from '../side/pubsub-matrix.js';
import { WarrenPubsubAdapter } from '../side/warren-pubsub.js';
import { queueTypeOf, type ClusterVariant } from './variants.js';

class WarrenClusterAdapter extends WarrenPubsubAdapter {
  constructor(private readonly queueType: 'classic' | 'quorum') {
    super('cluster');
  }

  protected handlers(spec: BrokerSpec) {
    const deliver = this.deliver;
    const queueType = this.queueType;

    @Injectable()
    class Handlers {
      @Subscribe(spec.exchange, spec.routingKey, { queue: spec.queue, queueType, prefetch: spec.prefetch })
      onEvent(event: BenchEvent): void {
        deliver(event);
      }
    }

    return { providers: [Handlers], prefetch: spec.prefetch };
  }
}

pubsubTrialMain<ClusterVariant>(async ({ variant }) =>
  variant.startsWith('raw')
    ? new RawAdapter(2, { 'x-queue-type': queueTypeOf(variant) })
    : new WarrenClusterAdapter(queueTypeOf(variant)),
);

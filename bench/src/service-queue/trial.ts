// One trial of the service-queue scenario in a fresh process: eight @Subscribe handlers, each on
// its own routing key, either on eight durable queues (one consumer each) or on one queue (a
// service queue: one consumer, Warren dispatching each message to the method whose binding
// matches its routing key). Messages go round robin over the eight keys; each handler checks it
// only gets its own.
import { Injectable } from '@nestjs/common';
import { Subscribe } from 'nestjs-warren';
import { addDecoratedMethod } from '../adapters/decorate.js';
import { handlerQueue, type BenchEvent, type BrokerSpec } from '../harness.js';
import { pubsubTrialMain } from '../side/pubsub-matrix.js';
import { WarrenPubsubAdapter } from '../side/warren-pubsub.js';
import { HANDLERS, keyOf, type ServiceQueueVariant } from './variants.js';

class ServiceQueueAdapter extends WarrenPubsubAdapter {
  private misrouted = 0;

  constructor(private readonly variant: ServiceQueueVariant) {
    super('service-queue');
  }

  protected handlers(spec: BrokerSpec) {
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
    return { providers: [Handlers], prefetch: spec.prefetch };
  }

  /** Round robin over the handlers' keys, whatever key the harness passes. */
  protected override publish(event: BenchEvent): Promise<void> {
    return this.publisher!.publish(this.spec.exchange, keyOf(event.id % HANDLERS), event);
  }

  extra(): Record<string, number> {
    return { misrouted: this.misrouted };
  }
}

pubsubTrialMain<ServiceQueueVariant>(async ({ variant }) => new ServiceQueueAdapter(variant));

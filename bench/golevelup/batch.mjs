// The golevelup half of the bench's batch scenario (bench/src/batch/): @RabbitSubscribe on a
// named durable queue, with `batchOptions: { size, timeout }` (golevelup 9 hands the handler an
// array of messages and acks them all once it returns) or without (one message per call). Plain
// ESM beside golevelup's own NestJS 11, as adapter.mjs, for the same reasons.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AmqpConnection, RabbitMQModule, RabbitSubscribe } from '@golevelup/nestjs-rabbitmq';
import { BaseAdapter } from '../dist/src/harness.js';
import { BATCH_TIMEOUT_MS, batchPrefetch } from '../dist/src/batch/variants.js';

export class GolevelupBatchAdapter extends BaseAdapter {
  name = 'golevelup';
  app;
  amqp;

  constructor(size) {
    super();
    this.size = size;
  }

  async setup(spec) {
    this.spec = spec;
    const deliver = this.deliver;
    const size = this.size;
    class Handlers {
      onEvents(events) {
        if (size) for (const event of events) deliver(event);
        else deliver(events);
      }
    }
    const descriptor = Object.getOwnPropertyDescriptor(Handlers.prototype, 'onEvents');
    Object.defineProperty(
      Handlers.prototype,
      'onEvents',
      Reflect.decorate(
        [
          RabbitSubscribe({
            exchange: spec.exchange,
            routingKey: spec.routingKey,
            queue: spec.queue,
            queueOptions: { durable: true },
            ...(size ? { batchOptions: { size, timeout: BATCH_TIMEOUT_MS } } : {}),
          }),
        ],
        Handlers.prototype,
        'onEvents',
        descriptor,
      ) ?? descriptor,
    );
    const BenchModule = Reflect.decorate(
      [
        Module({
          imports: [
            RabbitMQModule.forRoot({
              uri: spec.url,
              exchanges: [{ name: spec.exchange, type: 'topic', options: { durable: true } }],
              prefetchCount: batchPrefetch(spec.prefetch, size),
              connectionInitOptions: { wait: true, timeout: 30_000 },
              connectionManagerOptions: {
                connectionOptions: { noDelay: true, clientProperties: { connection_name: `bench:${spec.tag}` } },
              },
            }),
          ],
          providers: [Reflect.decorate([Injectable()], Handlers)],
        }),
      ],
      class BenchModule {},
    );
    this.app = await NestFactory.createApplicationContext(BenchModule, { logger: ['error', 'warn'] });
    this.amqp = this.app.get(AmqpConnection);
  }

  publish(event, routingKey) {
    return this.amqp.publish(this.spec.exchange, routingKey, event, { persistent: true });
  }

  call() {
    throw new Error('the batch scenario makes no RPC calls');
  }

  async teardown() {
    await this.app?.close();
  }
}

export function create(size) {
  return new GolevelupBatchAdapter(size);
}

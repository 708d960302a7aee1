// @golevelup/nestjs-rabbitmq inside a Nest app. Version 9 accepts only NestJS 11 as a peer (the
// repository is on NestJS 12), so this adapter is its own package, bench/golevelup/package.json,
// with its own NestJS 11 install, and runs in a worker process of its own like every system.
//
// It is plain ESM rather than TypeScript so that the repository's TypeScript configs, which
// include bench/, never need golevelup or NestJS 11 installed: the decorators are applied with
// Reflect.decorate, which is exactly what tsc's emitted code does for `@Decorator` syntax.
//
// pub/sub: @RabbitSubscribe on a named durable queue bound to the topic exchange; golevelup acks
// the message once the handler returns. AmqpConnection.publish() writes on golevelup's default
// channel, which is not a confirm channel: it settles when the message is written, not on a
// broker confirm.
// RPC: @RabbitRPC / AmqpConnection.request() over direct reply-to (golevelup's default). golevelup
// routes RPC through an exchange, so requests go through a direct exchange to the RPC queue.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AmqpConnection, RabbitMQModule, RabbitRPC, RabbitSubscribe } from '@golevelup/nestjs-rabbitmq';
import { BaseAdapter, handlerKey, handlerQueue, serve } from '../dist/src/harness.js';

const RPC_ROUTING_KEY = 'bench.rpc';

/** `@decorator` on a method, as tsc emits it. */
function decorateMethod(cls, method, ...decorators) {
  const descriptor = Object.getOwnPropertyDescriptor(cls.prototype, method);
  Object.defineProperty(
    cls.prototype,
    method,
    Reflect.decorate(decorators, cls.prototype, method, descriptor) ?? descriptor,
  );
}

export class GolevelupAdapter extends BaseAdapter {
  name = 'golevelup';
  app;
  amqp;

  async setup(spec) {
    this.spec = spec;
    const deliver = this.deliver;
    const events = spec.scenario === 'pubsub' || spec.scenario === 'boot';

    class EventHandlers {
      onEvent(event) {
        deliver(event);
      }
    }
    decorateMethod(
      EventHandlers,
      'onEvent',
      RabbitSubscribe({
        exchange: spec.exchange,
        routingKey: spec.routingKey,
        queue: spec.queue,
        queueOptions: { durable: true },
      }),
    );

    class RpcHandlers {
      serve(request) {
        return serve(request);
      }
    }
    decorateMethod(
      RpcHandlers,
      'serve',
      RabbitRPC({
        exchange: spec.exchange,
        routingKey: RPC_ROUTING_KEY,
        queue: spec.rpcQueue,
        queueOptions: { durable: false },
      }),
    );

    // Boot scenario: `spec.handlers` methods, each @RabbitSubscribe on its own queue and routing key.
    class BootHandlers {}
    for (let i = 0; i < spec.handlers; i++) {
      const method = `on${i}`;
      Object.defineProperty(BootHandlers.prototype, method, {
        value: (event) => this.deliverTo(i, event),
        writable: true,
        configurable: true,
      });
      decorateMethod(
        BootHandlers,
        method,
        RabbitSubscribe({
          exchange: spec.exchange,
          routingKey: handlerKey(i),
          queue: handlerQueue(spec, i),
          queueOptions: { durable: true },
        }),
      );
    }

    const handlers = { pubsub: EventHandlers, boot: BootHandlers, 'rpc-seq': RpcHandlers, 'rpc-conc': RpcHandlers };
    const Handlers = Reflect.decorate([Injectable()], handlers[spec.scenario]);
    const BenchModule = Reflect.decorate(
      [
        Module({
          imports: [
            RabbitMQModule.forRoot({
              uri: spec.url,
              exchanges: [{ name: spec.exchange, type: events ? 'topic' : 'direct', options: { durable: true } }],
              prefetchCount: spec.prefetch,
              connectionInitOptions: { wait: true, timeout: 30_000 },
              connectionManagerOptions: {
                connectionOptions: { noDelay: true, clientProperties: { connection_name: `bench:${spec.tag}` } },
              },
            }),
          ],
          providers: [Handlers],
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

  call(request) {
    return this.amqp.request({
      exchange: this.spec.exchange,
      routingKey: RPC_ROUTING_KEY,
      payload: request,
      timeout: 10_000,
    });
  }

  async teardown() {
    await this.app?.close();
  }
}

export function create() {
  return new GolevelupAdapter();
}

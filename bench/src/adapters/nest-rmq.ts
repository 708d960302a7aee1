// NestJS's own RMQ transport: a microservice (ServerRMQ) with @EventPattern / @MessagePattern
// handlers, and a ClientRMQ from ClientsModule to emit events and send requests.
//
// pub/sub: `wildcards: true` makes both ends use a topic exchange; the server binds its durable
// queue with each handler's pattern and the client publishes with the pattern as routing key.
// `noAck: false` and an explicit ack in the handler give "acked after the handler". NestJS's
// client publishes on a plain (non-confirm) channel: emit() settles once the message is written
// to the socket, not on a broker confirm.
// RPC: a plain queue; ClientRMQ.send() uses direct reply-to (its default replyQueue). The handler
// acks before returning (the reply is only sent after it returns; Nest has no hook in between).
import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  type ClientRMQ,
  ClientsModule,
  Ctx,
  EventPattern,
  MessagePattern,
  Payload,
  type RmqContext,
  type RmqOptions,
  Transport,
} from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import {
  BaseAdapter,
  type BenchEvent,
  type BrokerSpec,
  handlerKey,
  type RpcReply,
  type RpcRequest,
  serve,
} from '../harness.js';
import { addDecoratedMethod } from './decorate.js';

const CLIENT = Symbol('BENCH_RMQ_CLIENT');
const RPC_PATTERN = 'bench.rpc';

function ack(context: RmqContext): void {
  (context.getChannelRef() as { ack(msg: unknown): void }).ack(context.getMessage());
}

export class NestRmqAdapter extends BaseAdapter {
  readonly name = 'nest-rmq';
  private app?: INestMicroservice;
  private client?: ClientRMQ;

  async setup(spec: BrokerSpec): Promise<void> {
    this.spec = spec;
    const deliver = this.deliver;
    const socketOptions = (role: string) => ({
      connectionOptions: { noDelay: true, clientProperties: { connection_name: `bench:${spec.tag}:${role}` } },
    });
    const events = spec.scenario === 'pubsub' || spec.scenario === 'boot';

    @Controller()
    class EventHandlers {
      @EventPattern<string>(spec.routingKey)
      onEvent(@Payload() event: BenchEvent, @Ctx() context: RmqContext): void {
        deliver(event);
        ack(context);
      }
    }

    @Controller()
    class RpcHandlers {
      @MessagePattern(RPC_PATTERN)
      serve(@Payload() request: RpcRequest, @Ctx() context: RmqContext): RpcReply {
        const reply = serve(request);
        ack(context);
        return reply;
      }
    }

    // Boot scenario: `spec.handlers` @EventPattern(key_i) methods. NestJS RMQ has one queue per
    // microservice: the server binds it once per pattern (wildcards), so that is 1 queue, N bindings.
    class BootHandlers {}
    for (let i = 0; i < spec.handlers; i++) {
      addDecoratedMethod(
        BootHandlers,
        `on${i}`,
        (event: BenchEvent, context: RmqContext) => {
          this.deliverTo(i, event);
          ack(context);
        },
        [EventPattern<string>(handlerKey(i))],
        [Payload(), Ctx()],
      );
    }
    Controller()(BootHandlers);
    const handlers = { pubsub: EventHandlers, boot: BootHandlers, 'rpc-seq': RpcHandlers, 'rpc-conc': RpcHandlers };

    const server: RmqOptions['options'] = events
      ? {
          urls: [spec.url],
          queue: spec.queue,
          queueOptions: { durable: true },
          exchange: spec.exchange,
          exchangeType: 'topic',
          wildcards: true,
          noAck: false,
          prefetchCount: spec.prefetch,
          socketOptions: socketOptions('server'),
        }
      : {
          urls: [spec.url],
          queue: spec.rpcQueue,
          queueOptions: { durable: false },
          noAck: false,
          prefetchCount: spec.prefetch,
          socketOptions: socketOptions('server'),
        };
    const client: RmqOptions['options'] = events
      ? {
          urls: [spec.url],
          exchange: spec.exchange,
          exchangeType: 'topic',
          wildcards: true,
          persistent: true,
          socketOptions: socketOptions('client'),
        }
      : {
          urls: [spec.url],
          queue: spec.rpcQueue,
          queueOptions: { durable: false },
          socketOptions: socketOptions('client'),
        };

    @Module({
      imports: [ClientsModule.register([{ name: CLIENT, transport: Transport.RMQ, options: client }])],
      // The store scenario is Warren's alone (systems.ts: runsScenario).
      controllers: [handlers[spec.scenario as keyof typeof handlers]],
    })
    class BenchModule {}

    this.app = await NestFactory.createMicroservice<RmqOptions>(BenchModule, {
      transport: Transport.RMQ,
      options: server,
      logger: ['error', 'warn'],
    });
    await this.app.listen();
    this.client = this.app.get<ClientRMQ>(CLIENT);
    await this.client.connect();
  }

  protected publish(event: BenchEvent, routingKey: string): Promise<unknown> {
    return lastValueFrom(this.client!.emit(routingKey, event), { defaultValue: undefined });
  }

  protected call(request: RpcRequest): Promise<RpcReply> {
    return lastValueFrom(this.client!.send<RpcReply, RpcRequest>(RPC_PATTERN, request));
  }

  async teardown(): Promise<void> {
    await this.client?.close();
    await this.app?.close();
  }
}

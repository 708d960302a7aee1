// The Warren app of a pub/sub-only trial (batch handlers, the service queue, the cluster): a Nest
// application context with WarrenModule.forRoot and the scenario's handler providers, events
// published with the injected Publisher, no RPC. Each scenario gives its handlers.
import 'reflect-metadata';
import { Module, type INestApplicationContext, type Provider } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Publisher, WarrenModule } from 'nestjs-warren';
import { BaseAdapter, type BenchEvent, type BrokerSpec, type RpcReply } from '../harness.js';

export abstract class WarrenPubsubAdapter extends BaseAdapter {
  readonly name = 'warren';
  private app?: INestApplicationContext;
  protected publisher?: Publisher;

  constructor(private readonly scenario: string) {
    super();
  }

  /** The scenario's handler providers on the trial's spec, and the module's prefetch. */
  protected abstract handlers(spec: BrokerSpec): { providers: Provider[]; prefetch: number };

  async setup(spec: BrokerSpec): Promise<void> {
    this.spec = spec;
    const { providers, prefetch } = this.handlers(spec);

    @Module({
      imports: [WarrenModule.forRoot({ url: spec.url, prefetch, connectionName: `bench:${spec.tag}` })],
      providers,
    })
    class BenchModule {}

    this.app = await NestFactory.createApplicationContext(BenchModule, { logger: ['error', 'warn'] });
    this.publisher = this.app.get(Publisher);
  }

  protected publish(event: BenchEvent, routingKey: string): Promise<void> {
    return this.publisher!.publish(this.spec.exchange, routingKey, event);
  }

  protected call(): Promise<RpcReply> {
    throw new Error(`the ${this.scenario} scenario makes no RPC calls`);
  }

  async teardown(): Promise<void> {
    await this.app?.close();
  }
}

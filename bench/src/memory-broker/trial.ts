// One trial of the memory:// scenario in a fresh process: the same small app — a @Subscribe
// handler and an @RpcHandler — booted on the in-memory broker or on RabbitMQ, then what a test
// does over and over: `rounds` RPC calls one after another, and `rounds` events each published
// and awaited until its handler has run, then the app closed. The figures are what a test suite
// spends on the broker: process start to booted, per round trip, and closing.
import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import { reportResult, trialFailed } from '../side/side.js';

export type MemoryBrokerVariant = 'rabbitmq' | 'memory';

export interface MemoryBrokerTrialConfig {
  variant: MemoryBrokerVariant;
  url: string;
  tag: string;
  exchange: string;
  queue: string;
  rpcQueue: string;
  rounds: number;
}

export interface MemoryBrokerResult {
  variant: MemoryBrokerVariant;
  rounds: number;
  /** Process start until the modules are loaded (the same code for both). */
  importMs: number;
  /** NestFactory.createApplicationContext until it resolved: connections, topology, consumers. */
  bootMs: number;
  rpcP50Ms: number;
  rpcP99Ms: number;
  rpcTotalMs: number;
  eventP50Ms: number;
  eventP99Ms: number;
  eventTotalMs: number;
  closeMs: number;
  /** Process start until the app had closed. */
  totalMs: number;
  /** CPU (user + system) of the whole process, start to closed. */
  cpuMs: number;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '') as MemoryBrokerTrialConfig;
  const [{ Injectable, Module }, { NestFactory }, { Publisher, RpcClient, RpcHandler, Subscribe, WarrenModule }] =
    await Promise.all([import('@nestjs/common'), import('@nestjs/core'), import('nestjs-warren')]);
  const { percentile } = await import('../harness.js');
  const imported = performance.now();

  let handled = 0;
  let waiting: (() => void) | undefined;

  class Handlers {
    onEvent(): void {
      handled++;
      waiting?.();
    }
    echo(request: { id: number }): { id: number } {
      return { id: request.id };
    }
  }
  const proto = Handlers.prototype;
  const decorate = (name: 'onEvent' | 'echo', decorator: MethodDecorator) => {
    const descriptor = Object.getOwnPropertyDescriptor(proto, name)!;
    Object.defineProperty(proto, name, decorator(proto, name, descriptor) ?? descriptor);
  };
  decorate('onEvent', Subscribe(config.exchange, 'bench.event', { queue: config.queue }));
  decorate('echo', RpcHandler(config.rpcQueue, { durable: false }));
  Injectable()(Handlers);
  class BenchModule {}
  Module({
    imports: [WarrenModule.forRoot({ url: config.url, connectionName: `bench:${config.tag}` })],
    providers: [Handlers],
  })(BenchModule);

  const t0 = performance.now();
  const app = await NestFactory.createApplicationContext(BenchModule, { logger: ['error', 'warn'] });
  const booted = performance.now();
  const publisher = app.get(Publisher);
  const client = app.get(RpcClient);

  const rpc = new Float64Array(config.rounds);
  const tRpc = performance.now();
  for (let i = 0; i < config.rounds; i++) {
    const start = performance.now();
    const reply = await client.call<{ id: number }>(config.rpcQueue, { id: i });
    if (reply.id !== i) throw new Error(`call ${i} got the reply of call ${reply.id}`);
    rpc[i] = performance.now() - start;
  }
  const rpcTotal = performance.now() - tRpc;

  const events = new Float64Array(config.rounds);
  const tEvents = performance.now();
  for (let i = 0; i < config.rounds; i++) {
    const start = performance.now();
    const done = new Promise<void>((resolve) => (waiting = resolve));
    await publisher.publish(config.exchange, 'bench.event', { id: i });
    if (handled <= i) await done;
    events[i] = performance.now() - start;
  }
  const eventTotal = performance.now() - tEvents;

  const tClose = performance.now();
  await app.close();
  const closed = performance.now();
  const cpu = process.cpuUsage();
  const result: MemoryBrokerResult = {
    variant: config.variant,
    rounds: config.rounds,
    importMs: imported,
    bootMs: booted - t0,
    rpcP50Ms: percentile(rpc, 0.5),
    rpcP99Ms: percentile(rpc, 0.99),
    rpcTotalMs: rpcTotal,
    eventP50Ms: percentile(events, 0.5),
    eventP99Ms: percentile(events, 0.99),
    eventTotalMs: eventTotal,
    closeMs: closed - tClose,
    totalMs: closed,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
  reportResult(result);
}

main().catch(trialFailed);

// Scenario 5 of the benchmark, for Warren: V8 heap with 10 000 RPC calls pending, and heap growth
// over 200 000 messages published and consumed. Run with `npm run bench:memory` (needs
// RABBITMQ_URL; uses the built package). Numbers after two forced GCs, so they measure what is
// retained, not garbage waiting to be collected.
import 'reflect-metadata';
import amqplib from 'amqplib';
import { NestFactory } from '@nestjs/core';
import { Injectable, Module } from '@nestjs/common';
import { Consume, Publisher, RpcClient, WarrenModule } from 'nestjs-warren';

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc (npm run bench:memory does)');
const url = process.env.RABBITMQ_URL ?? 'amqp://localhost';
const QUEUE = `bench.memory.${process.pid}`;
const SILENT = `bench.memory-silent.${process.pid}`;
const PENDING = Number(process.env.PENDING ?? 10_000);
const MESSAGES = Number(process.env.MESSAGES ?? 200_000);

let handled = 0;
class Sink {
  onMessage() {
    handled++;
  }
}
Reflect.decorate(
  [Consume(QUEUE, { durable: false, prefetch: 200, failure: 'drop' })],
  Sink.prototype,
  'onMessage',
  Object.getOwnPropertyDescriptor(Sink.prototype, 'onMessage'),
);
Reflect.decorate([Injectable()], Sink);
class BenchModule {}
Reflect.decorate(
  [
    Module({
      imports: [WarrenModule.forRoot({ url, topology: { queues: [{ name: SILENT, durable: false }] } })],
      providers: [Sink],
    }),
  ],
  BenchModule,
);

const heapMb = () => {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

const app = await NestFactory.createApplicationContext(BenchModule, { logger: ['error'] });
try {
  const baseline = heapMb();
  const client = app.get(RpcClient);
  // A queue nobody consumes: every call stays pending until it is failed below.
  const calls = Array.from({ length: PENDING }, (_, i) =>
    client.call(SILENT, i, { timeout: 120_000 }).catch(() => undefined),
  );
  while (client.pendingCalls < PENDING) await new Promise((r) => setTimeout(r, 10));
  const withPending = heapMb();
  client.close();
  await Promise.all(calls);

  const publisher = app.get(Publisher);
  const payload = { id: 0, body: 'x'.repeat(1000) };
  const pump = async (n) => {
    const start = handled;
    const window = [];
    for (let i = 0; i < n; i++) {
      window.push(publisher.sendToQueue(QUEUE, payload, { persistent: false }));
      if (window.length >= 1000) await Promise.all(window.splice(0));
    }
    await Promise.all(window);
    while (handled - start < n) await new Promise((r) => setTimeout(r, 20));
  };
  await pump(MESSAGES / 10); // warm-up: JIT, buffers, pools
  const before = heapMb();
  await pump(MESSAGES);
  const after = heapMb();

  console.log(`heap, booted and idle:              ${baseline.toFixed(1)} MB`);
  console.log(
    `heap with ${PENDING} RPC calls pending:  ${withPending.toFixed(1)} MB (+${(withPending - baseline).toFixed(1)} MB)`,
  );
  console.log(`heap before ${MESSAGES} messages:         ${before.toFixed(1)} MB`);
  console.log(`heap after them:                     ${after.toFixed(1)} MB (growth ${(after - before).toFixed(1)} MB)`);
} finally {
  await app.close();
  const connection = await amqplib.connect(url);
  const channel = await connection.createChannel();
  for (const q of [QUEUE, SILENT]) await channel.deleteQueue(q).catch(() => undefined);
  await connection.close();
}

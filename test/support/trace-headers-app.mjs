// A Warren app on the built package (plain JavaScript, decorators applied by hand) that prints, as
// one JSON line, the headers its handlers saw for messages and RPC requests sent with and without
// an explicit traceparent. Run by tracing.e2e-spec.ts under without-opentelemetry.mjs.
// Arguments: <work queue> <rpc queue> <traceparent>; the broker is RABBITMQ_URL.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConsumerRegistry, Publisher, RpcClient, RpcHandler, WarrenModule } from 'nestjs-warren';

const [queue, rpcQueue, traceparent] = process.argv.slice(2);
const openTelemetryImportable = await import('@opentelemetry/api').then(
  () => true,
  () => false,
);

class Echo {
  headers(_payload, context) {
    return context.headers;
  }
}
RpcHandler(rpcQueue, { durable: false })(Echo.prototype, 'headers');

class App {}
Module({ imports: [WarrenModule.forRoot({ url: process.env.RABBITMQ_URL })], providers: [Echo] })(App);

const app = await NestFactory.createApplicationContext(App, { logger: ['error', 'warn'] });
try {
  const published = [];
  let bothSeen;
  const seen = new Promise((resolve) => (bothSeen = resolve));
  const onMessage = (_payload, context) => {
    published.push(context.headers);
    if (published.length === 2) bothSeen();
  };
  await app.get(ConsumerRegistry).consume(queue, onMessage, { durable: false, failure: 'drop' });
  const publisher = app.get(Publisher);
  await publisher.sendToQueue(queue, 'without');
  await publisher.sendToQueue(queue, 'explicit', { headers: { traceparent } });
  await seen;
  const rpc = app.get(RpcClient);
  const called = [
    await rpc.call(rpcQueue, 'without', { timeout: 5000 }),
    await rpc.call(rpcQueue, 'explicit', { timeout: 5000, headers: { traceparent } }),
  ];
  console.log(JSON.stringify({ openTelemetryImportable, published, called }));
} finally {
  await app.close();
}

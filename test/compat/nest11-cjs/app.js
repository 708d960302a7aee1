'use strict';
// A minimal NestJS 11 CommonJS app using nestjs-warren as installed from its npm tarball
// (test/compat.e2e-spec.ts). It boots with WarrenModule.forRoot, sends one message to its own
// queue through the injected Publisher, waits for its @Consume handler to receive it, prints one
// JSON line on stdout saying what arrived (and which build of nestjs-warren was loaded, and where
// its nestjs-warren/memory entry leads), then closes the app and exits 0 by itself. Any failure,
// or any step (app.close() included) still pending after 20 s, exits 1, naming the step on stderr.
//
// Plain JavaScript, no build step: the decorators are applied by hand, the way TypeScript's
// __decorate helper does, including the design:paramtypes metadata tsc emits for constructor
// injection.
//
// Environment: RABBITMQ_URL (the broker), COMPAT_QUEUE (a queue name no one else uses),
// COMPAT_PAYLOAD (the JSON payload to send).
require('reflect-metadata');
const path = require('node:path');
const { Injectable, Module } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { WarrenModule, Publisher, Consume } = require('nestjs-warren');

const APP = 'nest11-cjs';
const TIMEOUT_MS = 20_000;

function fail(message) {
  console.error(`${APP}: ${message}`);
  process.exit(1);
}

function required(name) {
  const value = process.env[name];
  if (!value) fail(`${name} is not set`);
  return value;
}

let stage = 'starting';
const watchdog = setTimeout(() => fail(`still ${stage} after ${TIMEOUT_MS} ms`), TIMEOUT_MS);
const url = required('RABBITMQ_URL');
const queue = required('COMPAT_QUEUE');
const payload = JSON.parse(required('COMPAT_PAYLOAD'));

/** Method decorators first, then class decorators: the order TypeScript applies them in. */
function decorate(cls, classDecorators, methodDecorators = {}) {
  for (const [key, decorators] of Object.entries(methodDecorators)) {
    const descriptor = Reflect.decorate(
      decorators,
      cls.prototype,
      key,
      Object.getOwnPropertyDescriptor(cls.prototype, key),
    );
    Object.defineProperty(cls.prototype, key, descriptor);
  }
  return Reflect.decorate(classDecorators, cls);
}

// @Injectable() class RoundTrip { constructor(readonly publisher: Publisher) {}
//   @Consume(queue, { durable: false, autoDelete: true }) onMessage(body, context) {} }
const RoundTrip = decorate(
  class RoundTrip {
    constructor(publisher) {
      this.publisher = publisher;
      this.received = new Promise((resolve) => (this.resolve = resolve));
    }

    onMessage(body, context) {
      this.resolve({ body, queue: context.queue, contentType: context.properties.contentType });
    }
  },
  [Injectable(), Reflect.metadata('design:paramtypes', [Publisher])],
  { onMessage: [Consume(queue, { durable: false, autoDelete: true })] },
);

const AppModule = decorate(class AppModule {}, [
  Module({ imports: [WarrenModule.forRoot({ url, connectTimeoutMs: 10_000 })], providers: [RoundTrip] }),
]);

/** Which builds of nestjs-warren this process has loaded, e.g. ['dist/cjs']. */
function loadedBuilds() {
  const root = path.dirname(require.resolve('nestjs-warren/package.json'));
  const builds = Object.keys(require.cache)
    .filter((file) => file.startsWith(root + path.sep))
    .map((file) => path.relative(root, file).split(path.sep).slice(0, 2).join('/'));
  return [...new Set(builds)].sort();
}

/** The files of the in-memory broker this process has loaded. */
function memoryFilesLoaded() {
  const memory = path.join(path.dirname(require.resolve('nestjs-warren/package.json')), 'dist', 'cjs', 'memory');
  return Object.keys(require.cache).filter((file) => file.startsWith(memory + path.sep));
}

async function main() {
  stage = 'booting the app';
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
  const roundTrip = app.get(RoundTrip);
  const publisherInjected = roundTrip.publisher instanceof Publisher && roundTrip.publisher === app.get(Publisher);
  stage = 'publishing';
  await roundTrip.publisher.sendToQueue(queue, payload);
  stage = 'waiting for the message';
  const received = await roundTrip.received;
  console.log(
    JSON.stringify({
      app: APP,
      node: process.version,
      nestCore: require('@nestjs/core/package.json').version,
      nestCommon: require('@nestjs/common/package.json').version,
      warren: require.resolve('nestjs-warren'),
      loaded: loadedBuilds(),
      // An app on amqp:// never loads the in-memory broker; its own entry point still resolves.
      memoryFilesLoaded: memoryFilesLoaded(),
      memoryEntry: require.resolve('nestjs-warren/memory'),
      memoryBroker: typeof require('nestjs-warren/memory').memoryBroker,
      publisherInjected,
      ...received,
    }),
  );
  stage = 'closing the app (app.close())';
  await app.close();
  clearTimeout(watchdog);
  // The process must end by itself: nothing Warren opened may outlive app.close().
  setTimeout(
    () => fail(`still running 5 s after app.close(): ${process.getActiveResourcesInfo().join(', ')}`),
    5_000,
  ).unref();
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));

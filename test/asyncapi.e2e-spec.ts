import { Parser } from '@asyncapi/parser';
import { Injectable, type INestApplication, type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  Consume,
  defineEvent,
  defineRpc,
  RpcHandler,
  Subscribe,
  WarrenConfigurationError,
  WarrenModule,
} from 'nestjs-warren';
import { type AsyncApiDocument, WarrenAsyncApi } from 'nestjs-warren/asyncapi';
import { z } from 'zod';
import { ORDERS_TOPOLOGY } from '../src/orders/contracts.js';
import { brokerUrl, deleteTopology, management, unique } from './support/broker.js';
import { startProgram, stopAllPrograms, waitForLine } from './support/programs.js';

const X = unique('e2e.asyncapi');
const HX = unique('e2e.asyncapi.headers');
const WORK = unique('e2e.asyncapi.work');
const Shipped = defineEvent<{ id: string; weight: number }>(X, 'order.shipped', {
  schema: z.object({ id: z.string(), weight: z.number().positive() }),
});
const Price = defineRpc<{ sku: string }, number>(unique('e2e.asyncapi.price'), {
  schema: z.object({ sku: z.string().min(3) }),
});
/** An event nobody in the app receives: it appears only because the app says it sends it. */
const Audited = defineEvent<{ who: string }>(X, 'audit.done');

@Injectable()
class Handlers {
  @Subscribe(Shipped, { queue: `${X}.shipped`, arguments: { 'x-max-priority': 5 } })
  onShipped() {}

  @Subscribe(X, ['order.*', 'audit.#'], { failure: 'drop' })
  onAnything() {}

  @Subscribe(HX, undefined, { type: 'headers', headers: { region: 'eu' }, match: 'any', queue: `${HX}.eu` })
  onEurope() {}

  @Consume(WORK, { failure: 'dead-letter', arguments: { 'x-message-ttl': 60_000 } })
  work() {}

  @RpcHandler(Price)
  price() {
    return 1;
  }
}

@Module({ imports: [WarrenModule.forRoot({ url: brokerUrl(), connectTimeoutMs: 10_000 })], providers: [Handlers] })
class AppModule {}

async function parse(document: unknown) {
  const { document: parsed, diagnostics } = await new Parser().parse(JSON.stringify(document));
  // Severity 0 is an error, 1 a warning; information and hints (a newer AsyncAPI version exists) are fine.
  return {
    parsed,
    problems: diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`),
  };
}

const apps: INestApplicationContext[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  await stopAllPrograms();
});
afterAll(async () => {
  await deleteTopology({
    exchanges: [X, HX],
    queues: [
      `${X}.shipped`,
      `${X}.shipped.dlq`,
      `${HX}.eu`,
      `${HX}.eu.dlq`,
      WORK,
      `${WORK}.dlq`,
      Price.queue,
      `${Price.queue}.dlq`,
    ],
  });
});

describe('WarrenAsyncApi.createDocument', () => {
  let document: AsyncApiDocument;

  beforeAll(async () => {
    const app = await NestFactory.createApplicationContext(AppModule, {
      logger: ['error', 'warn'],
      abortOnError: false,
    });
    apps.push(app);
    document = WarrenAsyncApi.createDocument(app, {
      info: { title: 'Shipping', version: '2.1.0' },
      contracts: { Shipped, Price, Audited },
      sends: [Audited, Price],
    });
  });

  it('is an AsyncAPI 3.0.0 document @asyncapi/parser reads without errors or warnings', async () => {
    const { parsed, problems } = await parse(document);
    expect(problems).toEqual([]);
    expect(parsed?.version()).toBe('3.0.0');
    expect(parsed?.info().title()).toBe('Shipping');
  });

  it('has exchanges and queues as channels with their AMQP bindings: type, durability, queue arguments, routing keys', () => {
    expect(document.channels[`exchange.${X}`]).toMatchObject({
      address: X,
      bindings: {
        amqp: {
          is: 'routingKey',
          exchange: { name: X, type: 'topic', durable: true, autoDelete: false, vhost: '/' },
          bindingVersion: '0.3.0',
        },
      },
    });
    expect(document.channels[`queue.${X}.shipped`]).toMatchObject({
      address: `${X}.shipped`,
      bindings: {
        amqp: {
          is: 'queue',
          queue: { name: `${X}.shipped`, durable: true, exclusive: false, 'x-arguments': { 'x-max-priority': 5 } },
        },
      },
      'x-bindings': [{ exchange: X, routingKey: 'order.shipped' }],
    });
    expect(document.channels[`queue.${WORK}`].bindings.amqp.queue).toMatchObject({
      'x-arguments': { 'x-message-ttl': 60_000 },
    });
    expect(document.channels[`queue.${HX}.eu`]['x-bindings']).toEqual([
      { exchange: HX, routingKey: '', arguments: { region: 'eu', 'x-match': 'any' } },
    ]);
    expect(document.channels[`exchange.${HX}`].bindings.amqp.exchange).toMatchObject({ type: 'headers' });
    // A server-named queue has no address until RabbitMQ names it.
    expect(document.channels['queue.Handlers.onAnything']).toMatchObject({
      address: null,
      bindings: { amqp: { is: 'queue', queue: { exclusive: true, durable: false, autoDelete: true } } },
      'x-bindings': [
        { exchange: X, routingKey: 'order.*' },
        { exchange: X, routingKey: 'audit.#' },
      ],
    });
  });

  it('has every handler as a receive operation, RPC with its reply, and each sent contract as a send operation', () => {
    const ops = document.operations;
    expect(Object.keys(ops).sort()).toEqual(
      [
        'Handlers.onShipped',
        'Handlers.onAnything',
        'Handlers.onEurope',
        'Handlers.work',
        'Handlers.price',
        'send.Audited',
        'call.Price.request',
      ].sort(),
    );
    expect(ops['Handlers.onShipped']).toMatchObject({
      action: 'receive',
      channel: { $ref: `#/channels/queue.${X}.shipped` },
      messages: [{ $ref: `#/channels/queue.${X}.shipped/messages/Shipped` }],
      'x-warren': { kind: 'subscribe', handler: 'Handlers.onShipped', failure: { mode: 'retry' } },
    });
    expect(ops['Handlers.price']).toMatchObject({
      action: 'receive',
      messages: [{ $ref: `#/channels/queue.${Price.queue}/messages/Price.request` }],
      reply: {
        channel: { $ref: '#/channels/rpc.replies' },
        messages: [{ $ref: '#/channels/rpc.replies/messages/Price.reply' }],
      },
    });
    expect(ops['send.Audited']).toMatchObject({
      action: 'send',
      channel: { $ref: `#/channels/exchange.${X}` },
      bindings: { amqp: { cc: ['audit.done'] } },
    });
    expect(ops['call.Price.request']).toMatchObject({
      action: 'send',
      reply: { channel: { $ref: '#/channels/rpc.replies' } },
    });
  });

  it("has every contract as a message with its payload's JSON Schema, from the contract's zod schema", () => {
    const messages = document.components.messages;
    expect(messages.Shipped.payload).toEqual({
      type: 'object',
      properties: { id: { type: 'string' }, weight: { type: 'number', exclusiveMinimum: 0 } },
      required: ['id', 'weight'],
    });
    expect(messages['Price.request'].payload).toMatchObject({ properties: { sku: { type: 'string', minLength: 3 } } });
    // No schema, no payload described: the document does not invent one.
    expect(messages.Audited.payload).toBeUndefined();
    expect(messages['Handlers.onAnything.payload'].payload).toBeUndefined();
  });
});

describe('WarrenAsyncApi refuses what cannot work, saying why', () => {
  it('createDocument on an app that has not booted yet', async () => {
    const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'], abortOnError: false });
    apps.push(app);
    expect(() => WarrenAsyncApi.createDocument(app, { info: { title: 't', version: '1' } })).toThrow(
      new WarrenConfigurationError(
        'describeTopology(app): the app is not initialised yet; Warren finds its handlers when the app boots ' +
          '(onApplicationBootstrap): call it after app.init() or app.listen()',
      ),
    );
  });

  it('setup after the app is initialised (its 404 handler would answer), and on an app without HTTP', async () => {
    const http = (await NestFactory.create(AppModule, {
      logger: ['error', 'warn'],
      abortOnError: false,
    })) as INestApplication;
    apps.push(http);
    await http.init();
    expect(() =>
      WarrenAsyncApi.setup('/asyncapi', http, () =>
        WarrenAsyncApi.createDocument(http, { info: { title: 't', version: '1' } }),
      ),
    ).toThrow(/already initialised/);
    const context = await NestFactory.createApplicationContext(AppModule, {
      logger: ['error', 'warn'],
      abortOnError: false,
    });
    apps.push(context);
    expect(() => WarrenAsyncApi.setup('/asyncapi', context as INestApplication, {} as AsyncApiDocument)).toThrow(
      /the app has no HTTP server/,
    );
    expect(() => WarrenAsyncApi.createDocument(context, { info: { title: 't' } as never })).toThrow(
      'WarrenAsyncApi.createDocument(app, { info }): info needs a title and a version',
    );
  });
});

describe('the order service serves its AsyncAPI document', () => {
  afterAll(async () => {
    const onBroker = await management<{ name: string }[]>('/api/queues/%2F?columns=name');
    await deleteTopology({
      exchanges: ORDERS_TOPOLOGY.exchanges,
      queues: onBroker.map((q) => q.name).filter((name) => name.startsWith('orders.')),
    });
  });

  it('at /asyncapi.json, parsed without errors, with its three contracts and their JSON Schemas, and at /asyncapi as a page', async () => {
    const saved = process.env.PORT;
    process.env.PORT = '0';
    const service = startProgram('orders');
    if (saved === undefined) delete process.env.PORT;
    else process.env.PORT = saved;
    const line = await waitForLine(service, /order service up on http:\/\/localhost:\d+/, 20_000);
    const base = `http://127.0.0.1:${/localhost:(\d+)/.exec(line)![1]}`;

    const json = await fetch(`${base}/asyncapi.json`);
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    const document = (await json.json()) as AsyncApiDocument;
    const { problems } = await parse(document);
    expect(problems).toEqual([]);
    const messages = document.components.messages;
    for (const name of ['OrderPlaced', 'StepCompleted', 'StockCheck.request']) {
      expect(messages[name]?.payload).toMatchObject({ type: 'object' });
    }
    expect(messages.OrderPlaced.payload).toMatchObject({
      required: ['id', 'customer_name', 'products_ids', 'total_cents', 'placed_at'],
    });
    expect(messages.StepCompleted.payload).toMatchObject({
      properties: { step: { enum: ['sales', 'marketing', 'warehouse'] } },
    });
    expect(Object.keys(document.operations)).toEqual(
      expect.arrayContaining([
        'OrdersService.onStepCompleted',
        'StockService.check',
        'SalesWorker.onOrderPlaced',
        'send.OrderPlaced',
        'call.StockCheck.request',
        'send.StepCompleted',
      ]),
    );

    const page = await fetch(`${base}/asyncapi`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('<title>Order service — AsyncAPI</title>');
    expect(html).toContain('SalesWorker.onOrderPlaced');
    // Self-contained: nothing for a browser to fetch from elsewhere.
    expect(html).not.toMatch(/<script|<link|https?:\/\//);
    await service.stop();
  });
});

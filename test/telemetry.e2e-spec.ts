import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { DataPointType, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import { type ReadableSpan } from '@opentelemetry/sdk-trace';
import { randomBytes } from 'node:crypto';
import {
  Consume,
  Publisher,
  retryQueueName,
  RpcClient,
  RpcHandler,
  RpcRemoteError,
  RpcTimeoutError,
  Subscribe,
} from 'nestjs-warren';
import { recordHandled } from 'nestjs-warren/testing';
import { bootApp } from './support/app.js';
import { registerTestOpenTelemetry, type TestOpenTelemetry } from './support/opentelemetry.js';
import { deleteTopology, unique, waitUntil } from './support/broker.js';

const EVENTS = unique('e2e.otel.events');
const NOTIFY = unique('e2e.otel.notify');
const FLAKY = unique('e2e.otel.flaky');
const COUNTED = unique('e2e.otel.counted');
const RPC = unique('e2e.otel.rpc');
const FAILING_RPC = unique('e2e.otel.rpc-fails');
const SILENT_RPC = unique('e2e.otel.rpc-silent');
const BATCHED = unique('e2e.otel.batched');
const RETRY_DELAY = 40;
/** A delay ladder of 10 ms units: a delayed publish of "1 s" waits 10 ms. */
const LADDER_UNIT_MS = 10;

@Injectable()
class Handlers {
  @Subscribe(EVENTS, 'order.*', { queue: NOTIFY, exchangeOptions: { durable: false }, durable: false })
  notify(_payload: { id: string }) {
    trace.getTracer('e2e').startSpan('send email').end();
  }

  @Consume(FLAKY, { durable: false, failure: { retryDelays: [RETRY_DELAY] } })
  flaky(_payload: { id: string }) {
    throw new TypeError('inventory service unreachable');
  }

  @Consume(COUNTED, { durable: false })
  counted(_payload: { n: number }) {}

  @RpcHandler(RPC, { durable: false })
  double(payload: { n: number }) {
    return { n: payload.n * 2 };
  }

  @RpcHandler(FAILING_RPC, { durable: false })
  fails(_payload: unknown): never {
    throw new RangeError('no such account');
  }

  /** Fills only once 3 messages are in: the test publishes exactly 3. */
  @Consume(BATCHED, { durable: false, batch: { size: 3, timeoutMs: 30_000 } })
  batched(_payloads: { n: number }[]) {
    trace.getTracer('e2e').startSpan('store rows').end();
  }
}

/** The delay ladder's exchanges and queues (topology/delay-ladder.ts), deleted after the suite. */
function ladder(unitMs: number) {
  const prefix = `warren.delay.${unitMs}ms`;
  const levels = Array.from({ length: 28 }, (_, k) => `${prefix}.level-${k}`);
  return {
    queues: [...levels, `${prefix}.undeliverable`],
    exchanges: [...levels, `${prefix}.deliver`, `${prefix}.undeliverable`],
  };
}

let app: INestApplicationContext;
let publisher: Publisher;
let rpc: RpcClient;

let otel: TestOpenTelemetry;

beforeAll(async () => {
  otel = registerTestOpenTelemetry({ metrics: true, serviceName: 'e2e-otel-service' });
  app = await bootApp(
    { providers: [Handlers] },
    { topology: { queues: [{ name: SILENT_RPC, durable: false }] }, delayLadder: { unitMs: LADDER_UNIT_MS } },
  );
  publisher = app.get(Publisher);
  rpc = app.get(RpcClient);
});

afterAll(async () => {
  await app?.close();
  await otel?.unregister();
  const delays = ladder(LADDER_UNIT_MS);
  await deleteTopology({
    queues: [
      NOTIFY,
      FLAKY,
      `${FLAKY}.dlq`,
      COUNTED,
      RPC,
      FAILING_RPC,
      SILENT_RPC,
      BATCHED,
      retryQueueName(RETRY_DELAY),
      ...delays.queues,
    ],
    exchanges: [EVENTS, retryQueueName(RETRY_DELAY), ...delays.exchanges],
  });
});

const id = () => randomBytes(4).toString('hex');

function finished(name: string): ReadableSpan[] {
  return otel.spans.getFinishedSpans().filter((s) => s.name === name);
}

async function spansNamed(name: string, count: number): Promise<ReadableSpan[]> {
  await waitUntil(`${count} finished span(s) "${name}"`, () => finished(name).length >= count);
  return finished(name);
}

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

async function metric(name: string): Promise<MetricData | undefined> {
  const { resourceMetrics } = await otel.reader!.collect();
  // Warren's metrics come under the app's SDK resource, with its `service.name`.
  expect(resourceMetrics.resource.attributes['service.name']).toBe('e2e-otel-service');
  const warren = resourceMetrics.scopeMetrics.find((s) => s.scope.name === 'nestjs-warren');
  return warren?.metrics.find((m) => m.descriptor.name === name);
}

/** The data points of a metric whose attributes include `match`. */
async function points(name: string, match: Record<string, unknown>) {
  const data = await metric(name);
  return (data?.dataPoints ?? []).filter((p) =>
    Object.entries(match).every(([key, value]) => p.attributes[key] === value),
  ) as { value: number | Histogram; attributes: Record<string, unknown> }[];
}

describe('spans, with an SDK registered', () => {
  it('a publish is a PRODUCER span, its delivery a CONSUMER child, and the handler’s spans are the delivery’s children', async () => {
    otel.spans.reset();
    const key = id();
    await publisher.publish(EVENTS, 'order.placed', { id: key }, { messageId: `m-${key}` });
    const [publish] = await spansNamed(`publish ${EVENTS}`, 1);
    const [process] = await spansNamed(`process ${NOTIFY}`, 1);
    const [handler] = await spansNamed('send email', 1);

    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(publish.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'publish',
      'messaging.destination.name': EVENTS,
      'messaging.rabbitmq.destination.routing_key': 'order.placed',
      'messaging.message.id': `m-${key}`,
    });
    expect(publish.status.code).toBe(SpanStatusCode.UNSET);

    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(process.spanContext().traceId).toBe(publish.spanContext().traceId);
    expect(parentOf(process)).toBe(publish.spanContext().spanId);
    expect(process.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': EVENTS,
      'messaging.rabbitmq.destination.routing_key': 'order.placed',
      'messaging.consumer.group.name': NOTIFY,
      'messaging.message.id': `m-${key}`,
      'warren.handler': 'Handlers.notify',
      'warren.outcome': 'acked',
      'warren.attempt': 1,
    });
    expect(typeof process.attributes['messaging.rabbitmq.message.delivery_tag']).toBe('number');
    expect(process.status.code).toBe(SpanStatusCode.UNSET);
    expect(parentOf(handler)).toBe(process.spanContext().spanId);

    // Opt-in in the RabbitMQ conventions, and left out: it costs an attribute on every span.
    expect(publish.attributes['messaging.message.body.size']).toBeUndefined();
    expect(process.attributes['messaging.message.body.size']).toBeUndefined();

    // The service is named by the app's SDK resource, which Warren's spans come under; not a span attribute.
    for (const span of [publish, process]) {
      expect(span.resource.attributes['service.name']).toBe('e2e-otel-service');
      expect(span.attributes['service.name']).toBeUndefined();
    }
  });

  it('a delayed publish is a PRODUCER span named by where it is going, and its delivery, out of the ladder, is its child', async () => {
    otel.spans.reset();
    const key = id();
    await publisher.publish(EVENTS, 'order.later', { id: key }, { messageId: `d-${key}`, delay: 1000 });
    const [publish] = await spansNamed(`publish ${EVENTS}`, 1);
    const [process] = await spansNamed(`process ${NOTIFY}`, 1);
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(publish.attributes).toMatchObject({
      'messaging.operation.name': 'publish',
      'messaging.destination.name': EVENTS,
      'messaging.rabbitmq.destination.routing_key': 'order.later',
      'messaging.message.id': `d-${key}`,
    });
    expect(parentOf(process)).toBe(publish.spanContext().spanId);
    expect(process.attributes['messaging.message.id']).toBe(`d-${key}`);
  });

  it('a batch handler’s invocation is one CONSUMER span with the batch’s size, linked to each message’s publish', async () => {
    otel.spans.reset();
    for (let n = 0; n < 3; n++) await publisher.sendToQueue(BATCHED, { n });
    const publishes = await spansNamed(`publish ${BATCHED}`, 3);
    const [batch] = await spansNamed(`process ${BATCHED}`, 1);
    const [handler] = await spansNamed('store rows', 1);
    expect(batch.kind).toBe(SpanKind.CONSUMER);
    expect(batch.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': '',
      'messaging.consumer.group.name': BATCHED,
      'messaging.batch.message_count': 3,
      'warren.handler': 'Handlers.batched',
    });
    // Linked to the senders, a child of none of them.
    expect(parentOf(batch)).toBeUndefined();
    expect(batch.links.map((l) => l.context.spanId).sort()).toEqual(
      publishes.map((p) => p.spanContext().spanId).sort(),
    );
    expect(parentOf(handler)).toBe(batch.spanContext().spanId);
    expect(batch.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('a delivery retried and then dead-lettered: one span per attempt with its outcome, in error, in one trace', async () => {
    otel.spans.reset();
    const dead = recordHandled(app, 'Handlers.flaky');
    try {
      await publisher.sendToQueue(FLAKY, { id: id() });
      await dead.waitForCount(2);
    } finally {
      dead.stop();
    }
    const [publish] = await spansNamed(`publish ${FLAKY}`, 1);
    expect(publish.attributes['messaging.destination.name']).toBe('');
    const attempts = (await spansNamed(`process ${FLAKY}`, 2)).sort(
      (a, b) => Number(a.attributes['warren.attempt']) - Number(b.attributes['warren.attempt']),
    );
    expect(attempts.map((s) => [s.attributes['warren.attempt'], s.attributes['warren.outcome']])).toEqual([
      [1, 'retried'],
      [2, 'dead-lettered'],
    ]);
    expect(attempts[1].attributes['warren.dead_letter.reason']).toBe('attempts-exhausted');
    for (const span of attempts) {
      expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'inventory service unreachable' });
      expect(span.attributes['error.type']).toBe('TypeError');
      expect(span.events.map((e) => e.name)).toEqual(['exception']);
      // The retry is a copy of the same message: it carries the publish's context.
      expect(parentOf(span)).toBe(publish.spanContext().spanId);
    }

    expect(await points('warren.messages.retried', { 'warren.handler': 'Handlers.flaky' })).toMatchObject([
      { value: 1 },
    ]);
    expect(await points('warren.messages.dead_lettered', { 'warren.handler': 'Handlers.flaky' })).toMatchObject([
      {
        value: 1,
        attributes: { 'warren.dead_letter.reason': 'attempts-exhausted', 'messaging.consumer.group.name': FLAKY },
      },
    ]);
    const durations = await points('messaging.process.duration', { 'warren.handler': 'Handlers.flaky' });
    expect(
      durations.map((p) => [p.attributes['warren.outcome'], p.attributes['error.type'], (p.value as Histogram).count]),
    ).toEqual(
      expect.arrayContaining([
        ['retried', 'TypeError', 1],
        ['dead-lettered', 'TypeError', 1],
      ]),
    );
  });

  it('an RPC call is a CLIENT span with its reply, and the server’s processing is its child', async () => {
    otel.spans.reset();
    await expect(rpc.call(RPC, { n: 21 }, { timeout: 5000 })).resolves.toEqual({ n: 42 });
    const [client] = await spansNamed(`call ${RPC}`, 1);
    const [server] = await spansNamed(`process ${RPC}`, 1);
    expect(client.kind).toBe(SpanKind.CLIENT);
    expect(client.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.operation.name': 'call',
      'messaging.destination.name': '',
      'messaging.rabbitmq.destination.routing_key': RPC,
      'warren.rpc.outcome': 'reply',
    });
    expect(client.status.code).toBe(SpanStatusCode.UNSET);
    expect(server.kind).toBe(SpanKind.CONSUMER);
    expect(parentOf(server)).toBe(client.spanContext().spanId);
    // The request's correlation id is the conversation both sides name.
    expect(server.attributes['messaging.message.conversation_id']).toBe(
      client.attributes['messaging.message.conversation_id'],
    );
    expect(server.attributes['warren.outcome']).toBe('acked');
  });

  it('an RPC call answered with an error, and one that times out: error spans with their outcome, and counted', async () => {
    otel.spans.reset();
    await expect(rpc.call(FAILING_RPC, {}, { timeout: 5000 })).rejects.toBeInstanceOf(RpcRemoteError);
    await expect(rpc.call(SILENT_RPC, {}, { timeout: 200 })).rejects.toBeInstanceOf(RpcTimeoutError);

    const [remote] = await spansNamed(`call ${FAILING_RPC}`, 1);
    expect(remote.attributes).toMatchObject({ 'warren.rpc.outcome': 'remote-error', 'error.type': 'RpcRemoteError' });
    expect(remote.status.code).toBe(SpanStatusCode.ERROR);
    const [server] = await spansNamed(`process ${FAILING_RPC}`, 1);
    expect(parentOf(server)).toBe(remote.spanContext().spanId);
    expect(server.status.code).toBe(SpanStatusCode.ERROR);
    expect(server.attributes['error.type']).toBe('RangeError');

    const [timedOut] = await spansNamed(`call ${SILENT_RPC}`, 1);
    expect(timedOut.attributes).toMatchObject({ 'warren.rpc.outcome': 'timeout', 'error.type': 'RpcTimeoutError' });
    expect(timedOut.status.code).toBe(SpanStatusCode.ERROR);

    const calls = async (queue: string) =>
      (await points('warren.rpc.client.duration', { 'messaging.destination.name': queue })).map((p) => [
        p.attributes['warren.rpc.outcome'],
        (p.value as Histogram).count,
      ]);
    expect(await calls(FAILING_RPC)).toEqual([['remote-error', 1]]);
    expect(await calls(SILENT_RPC)).toEqual([['timeout', 1]]);
    expect(await points('warren.rpc.client.in_flight', {})).toMatchObject([{ value: 0 }]);
  });
});

describe('metrics, with an SDK registered', () => {
  it('after 10 messages: 10 sent and confirmed, 10 consumed and processed by the handler, and the gauges', async () => {
    const log = recordHandled(app, 'Handlers.counted');
    try {
      for (let n = 0; n < 10; n++) await publisher.sendToQueue(COUNTED, { n });
      await log.waitForCount(10);
    } finally {
      log.stop();
    }
    const sent = await points('messaging.client.sent.messages', {
      'messaging.operation.name': 'publish',
      'messaging.destination.name': '',
    });
    // The default exchange also carried the earlier tests' publishes and retries: count this test's from the other side.
    expect(sent).toHaveLength(1);
    expect(sent[0].attributes['error.type']).toBeUndefined();
    const consumed = await points('messaging.client.consumed.messages', { 'warren.handler': 'Handlers.counted' });
    expect(consumed).toMatchObject([
      {
        value: 10,
        attributes: {
          'messaging.system': 'rabbitmq',
          'messaging.operation.name': 'process',
          'messaging.consumer.group.name': COUNTED,
        },
      },
    ]);
    const processed = await points('messaging.process.duration', { 'warren.handler': 'Handlers.counted' });
    expect(processed.map((p) => [p.attributes['warren.outcome'], (p.value as Histogram).count])).toEqual([
      ['acked', 10],
    ]);
    const confirm = await metric('warren.publish.confirm.duration');
    expect(confirm?.descriptor.unit).toBe('s');
    expect(confirm?.dataPointType).toBe(DataPointType.HISTOGRAM);
    const confirmed = confirm!.dataPoints.find((p) => p.attributes['messaging.destination.name'] === '')!;
    expect((confirmed.value as Histogram).count).toBe(sent[0].value);

    expect(
      (await points('warren.connection.up', { 'warren.connection': 'default' })).map((p) => [
        p.attributes['warren.connection.role'],
        p.value,
      ]),
    ).toEqual(
      expect.arrayContaining([
        ['consume', 1],
        ['publish', 1],
      ]),
    );
    // One consumer per handler: notify, flaky, counted, batched and the two RPC servers.
    expect(await points('warren.consumers.active', {})).toMatchObject([{ value: 6 }]);
    expect(await points('warren.publish.buffered', {})).toMatchObject([{ value: 0 }]);
  });
});

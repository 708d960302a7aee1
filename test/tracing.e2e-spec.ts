import { Injectable, type INestApplicationContext } from '@nestjs/common';
import {
  context as otelContext,
  createTraceState,
  ROOT_CONTEXT,
  type SpanContext,
  trace,
  TraceFlags,
} from '@opentelemetry/api';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Consume, Publisher, RpcClient, RpcHandler, Subscribe, type WarrenContext } from 'nestjs-warren';
import { recordHandled, recordPublished } from 'nestjs-warren/testing';
import { bootApp } from './support/app.js';
import { registerTestOpenTelemetry, type TestOpenTelemetry } from './support/opentelemetry.js';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';

const WORK = unique('e2e.trace.work');
const EVENTS = unique('e2e.trace.events');
const RPC = unique('e2e.trace.rpc');
const BARE_WORK = unique('e2e.trace.bare-work');
const BARE_RPC = unique('e2e.trace.bare-rpc');

const tracer = trace.getTracer('warren-e2e');

/** What a handler saw: the headers, the context it ran in, and the span it started there. */
interface Seen {
  id: string;
  traceparent?: unknown;
  tracestate?: unknown;
  active?: { traceId: string; spanId: string; isRemote?: boolean; traceState?: string };
  startedSpanId: string;
}

const seen = new Map<string, Seen>();

function observe(payload: { id: string }, context: WarrenContext): Seen {
  const active = trace.getSpanContext(otelContext.active());
  const span = tracer.startSpan(`handle ${payload.id}`);
  span.end();
  const observed: Seen = {
    id: payload.id,
    traceparent: context.headers.traceparent,
    tracestate: context.headers.tracestate,
    active: active && {
      traceId: active.traceId,
      spanId: active.spanId,
      isRemote: active.isRemote,
      traceState: active.traceState?.serialize(),
    },
    startedSpanId: span.spanContext().spanId,
  };
  seen.set(payload.id, observed);
  return observed;
}

@Injectable()
class Traced {
  @Consume(WORK, { durable: false, failure: 'drop' })
  work(payload: { id: string }, context: WarrenContext) {
    observe(payload, context);
  }

  @Subscribe(EVENTS, 'trace.*', { exchangeOptions: { durable: false } })
  onEvent(payload: { id: string }, context: WarrenContext) {
    observe(payload, context);
  }

  @RpcHandler(RPC, { durable: false })
  answer(payload: { id: string }, context: WarrenContext): Seen {
    return observe(payload, context);
  }
}

let app: INestApplicationContext;
let publisher: Publisher;
let rpc: RpcClient;

let otel: TestOpenTelemetry;

beforeAll(async () => {
  otel = registerTestOpenTelemetry();
  app = await bootApp({ providers: [Traced] });
  publisher = app.get(Publisher);
  rpc = app.get(RpcClient);
});

afterAll(async () => {
  await app?.close();
  await otel?.unregister();
  await deleteTopology({ queues: [WORK, RPC, BARE_WORK, BARE_RPC], exchanges: [EVENTS] });
});

const id = () => randomBytes(4).toString('hex');
const traceparentOf = (span: SpanContext) => `00-${span.traceId}-${span.spanId}-0${span.traceFlags}`;

/** Runs `send` inside a fresh active span; returns that span's context and what `send` returned. */
async function inSpan<T>(send: () => Promise<T>): Promise<{ sender: SpanContext; result: T }> {
  return tracer.startActiveSpan('send', async (span) => {
    try {
      return { sender: span.spanContext(), result: await send() };
    } finally {
      span.end();
    }
  });
}

/** Resolves with what the handler saw of message `key` once its delivery is settled. */
async function handled(label: string, key: string, send: () => Promise<unknown>): Promise<Seen> {
  const log = recordHandled(app, label);
  try {
    await send();
    await log.waitFor((m) => (m.payload as { id?: string }).id === key);
    return seen.get(key)!;
  } finally {
    log.stop();
  }
}

function exported(spanId: string | undefined) {
  const span = otel.spans.getFinishedSpans().find((s) => s.spanContext().spanId === spanId);
  if (!span) throw new Error(`span ${spanId} was not exported`);
  return span;
}

/**
 * What a handler's span descends from: Warren's span for the delivery, Warren's span for the
 * publish or call that sent it (unless the message carried a traceparent of its own), and that
 * one's parent.
 */
function lineage(got: Seen) {
  const handler = exported(got.startedSpanId);
  const delivery = exported(handler.parentSpanContext?.spanId);
  return { delivery, sentBy: delivery.parentSpanContext?.spanId };
}

/**
 * An RPC handler's lineage: the server's delivery span ends once the reply is confirmed and the
 * request acked, which can be after the caller has its reply.
 */
async function rpcLineage(got: Seen) {
  await waitUntil('the RPC delivery span to end', () =>
    otel.spans
      .getFinishedSpans()
      .some((s) => s.spanContext().spanId === exported(got.startedSpanId).parentSpanContext?.spanId),
  );
  return lineage(got);
}

function sendSpan(spanId: string | undefined) {
  const span = exported(spanId);
  return { name: span.name, parent: span.parentSpanContext?.spanId, traceparent: traceparentOf(span.spanContext()) };
}

describe('trace context with @opentelemetry/api and an SDK', () => {
  it('Publisher.publish: its span is the active span’s child, travels as traceparent, and the delivery’s span is its child', async () => {
    const key = id();
    let sender!: SpanContext;
    const got = await handled('Traced.onEvent', key, async () => {
      ({ sender } = await inSpan(() => publisher.publish(EVENTS, 'trace.publish', { id: key })));
    });
    const { delivery, sentBy } = lineage(got);
    const publish = sendSpan(sentBy);
    expect(publish).toMatchObject({ name: `publish ${EVENTS}`, parent: sender.spanId });
    expect(got.traceparent).toBe(publish.traceparent);
    expect(got.tracestate).toBeUndefined();
    expect(delivery.name).toMatch(/^process /);
    // The handler runs in the delivery's span, in the sender's trace.
    expect(got.active).toMatchObject({ traceId: sender.traceId, spanId: delivery.spanContext().spanId });
  });

  it('Publisher.sendToQueue: the trace and tracestate of the active context reach the handler', async () => {
    const key = id();
    const parent: SpanContext = {
      traceId: randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      traceFlags: TraceFlags.SAMPLED,
      traceState: createTraceState('warren=e2e,other=1'),
    };
    const got = await handled('Traced.work', key, () =>
      otelContext.with(trace.setSpanContext(ROOT_CONTEXT, parent), () => publisher.sendToQueue(WORK, { id: key })),
    );
    const { delivery, sentBy } = lineage(got);
    const publish = sendSpan(sentBy);
    expect(publish).toMatchObject({ name: `publish ${WORK}`, parent: parent.spanId });
    expect(got.traceparent).toBe(publish.traceparent);
    expect(got.tracestate).toBe('warren=e2e,other=1');
    expect(got.active).toEqual({
      traceId: parent.traceId,
      spanId: delivery.spanContext().spanId,
      isRemote: undefined,
      traceState: 'warren=e2e,other=1',
    });
  });

  it('RpcClient.call: its span is the active span’s child, and the @RpcHandler runs in its child', async () => {
    const key = id();
    const { sender, result } = await inSpan(() => rpc.call<Seen>(RPC, { id: key }, { timeout: 5000 }));
    const { delivery, sentBy } = await rpcLineage(result);
    const call = sendSpan(sentBy);
    expect(call).toMatchObject({ name: `call ${RPC}`, parent: sender.spanId });
    expect(result.traceparent).toBe(call.traceparent);
    expect(result.active).toMatchObject({ traceId: sender.traceId, spanId: delivery.spanContext().spanId });
  });

  it('with no span active, the publish starts the trace: its span is a root and the handler runs in that trace', async () => {
    const published = recordPublished(app);
    const key = id();
    const got = await handled('Traced.work', key, () => publisher.sendToQueue(WORK, { id: key }));
    const [message] = published.entries;
    published.stop();
    const { delivery, sentBy } = lineage(got);
    const publish = sendSpan(sentBy);
    expect(publish.parent).toBeUndefined();
    expect(message.properties.headers).toEqual({ traceparent: publish.traceparent });
    expect(got.active?.spanId).toBe(delivery.spanContext().spanId);

    const reply = await rpc.call<Seen>(RPC, { id: id() }, { timeout: 5000 });
    const call = sendSpan((await rpcLineage(reply)).sentBy);
    expect(call.parent).toBeUndefined();
    expect(reply.traceparent).toBe(call.traceparent);
  });

  it('passes an explicit headers.traceparent through, in place of the publish span’s, and the delivery is its child', async () => {
    const traceId = randomBytes(16).toString('hex');
    const spanId = randomBytes(8).toString('hex');
    const explicit = `00-${traceId}-${spanId}-01`;

    const withoutSpan = id();
    const got = await handled('Traced.onEvent', withoutSpan, () =>
      publisher.publish(
        EVENTS,
        'trace.explicit',
        { id: withoutSpan },
        { headers: { traceparent: explicit, app: 'x' } },
      ),
    );
    expect(got.traceparent).toBe(explicit);
    expect(got.active?.traceId).toBe(traceId);
    expect(lineage(got).sentBy).toBe(spanId);

    // The caller's traceparent wins over the active span, whose tracestate stays behind with it.
    const withSpan = id();
    const parent = { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), traceFlags: 1 };
    const active = trace.setSpanContext(ROOT_CONTEXT, { ...parent, traceState: createTraceState('warren=active') });
    const overridden = await handled('Traced.work', withSpan, () =>
      otelContext.with(active, () =>
        publisher.sendToQueue(WORK, { id: withSpan }, { headers: { traceparent: explicit } }),
      ),
    );
    expect(overridden).toMatchObject({ traceparent: explicit, tracestate: undefined, active: { traceId } });
    expect(lineage(overridden).sentBy).toBe(spanId);

    const reply = await otelContext.with(active, () =>
      rpc.call<Seen>(RPC, { id: id() }, { timeout: 5000, headers: { traceparent: explicit } }),
    );
    expect(reply).toMatchObject({ traceparent: explicit, active: { traceId } });
    expect((await rpcLineage(reply)).sentBy).toBe(spanId);
  });
});

describe('trace context without @opentelemetry/api', () => {
  it('passes an explicit traceparent through and adds none, in an app that cannot import the API', async () => {
    const traceparent = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
    const script = fileURLToPath(new URL('./support/trace-headers-app.mjs', import.meta.url));
    const hide = fileURLToPath(new URL('./support/without-opentelemetry.mjs', import.meta.url));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', hide, script, BARE_WORK, BARE_RPC, traceparent],
      { env: { ...process.env, RABBITMQ_URL: brokerUrl() }, timeout: 30_000 },
    );
    const report = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(report).toEqual({
      // Proof that the API really was out of reach, so the rest shows Warren without it.
      openTelemetryImportable: false,
      published: [{}, { traceparent }],
      called: [{}, { traceparent }],
    });
  });
});

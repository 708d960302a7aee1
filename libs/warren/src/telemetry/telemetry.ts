import { openTelemetry } from '../tracing/trace-context.js';
import { createInstruments, type GaugeName, type Instruments } from './instruments.js';
import type { ObservableResult, Span, TelemetryApi, Tracer } from './otel-types.js';

/** The instrumentation scope Warren's spans and metrics are reported under. */
export const SCOPE = 'nestjs-warren';

/**
 * Warren's tracer, once a boot found an SDK's TracerProvider registered; undefined otherwise,
 * and then the publish, delivery and RPC paths start no span and build nothing for one.
 */
export let tracer: Tracer | undefined;

/** Warren's instruments, once a boot found an SDK's MeterProvider registered; undefined otherwise. */
export let instruments: Instruments | undefined;

/** The API, when tracing or metrics are on. */
export let telemetryApi: TelemetryApi | undefined;

/** The MeterProvider `instruments` were made with. */
let instrumentsFrom: unknown;

/**
 * Looks, at each connection's boot (after `loadOpenTelemetry()`), for the SDK the app registered.
 * Asking once here rather than per message is what keeps an app without an SDK at the cost of one
 * `if` per message: the API's no-op tracer would still build a span object for every publish. An
 * SDK registered after the app booted is therefore not seen: register it first, as OpenTelemetry
 * asks of every instrumentation.
 */
export function startTelemetry(): void {
  const api = openTelemetry as unknown as Partial<TelemetryApi> | undefined;
  const provider = api?.ProxyTracerProvider && api.trace?.getTracerProvider();
  // The global provider is always the API's proxy; a fresh proxy's delegate is the no-op provider.
  const noTracing = !provider || provider.getDelegate?.() === new api!.ProxyTracerProvider!().getDelegate?.();
  tracer = noTracing ? undefined : provider.getTracer(SCOPE);
  // The metrics API came with @opentelemetry/api 1.3: an older one traces only.
  const meterProvider = api?.createNoopMeter && api.metrics?.getMeterProvider();
  if (!meterProvider || meterProvider.getMeter(SCOPE) === api.createNoopMeter!()) {
    instruments = instrumentsFrom = undefined;
  } else if (meterProvider !== instrumentsFrom) {
    // Once per provider: instruments made twice would have their gauges observed twice.
    instruments = createInstruments(meterProvider.getMeter(SCOPE), (gauge, result) => readGauges(gauge, result));
    instrumentsFrom = meterProvider;
  }
  telemetryApi = tracer || instruments ? (api as TelemetryApi) : undefined;
}

/** Runs `fn` with `span` active, so the trace context a message carries out is the span's. */
export function inSpan<R>(span: Span, fn: () => R): R {
  const api = telemetryApi!;
  return api.context.with(api.trace.setSpan(api.context.active(), span), fn);
}

export type { GaugeName };

export type GaugeSource = (result: ObservableResult) => void;

const sources: Record<GaugeName, Set<GaugeSource>> = {
  buffered: new Set(),
  rpcInFlight: new Set(),
  connectionUp: new Set(),
  consumersActive: new Set(),
};

/**
 * Adds a reader of a gauge (a publisher's buffer, a connection's state): called only when a
 * metric reader collects, never on the message path. Returns the function that removes it.
 */
export function addGaugeSource(gauge: GaugeName, source: GaugeSource): () => void {
  sources[gauge].add(source);
  return () => sources[gauge].delete(source);
}

function readGauges(gauge: GaugeName, result: ObservableResult): void {
  for (const source of sources[gauge]) source(result);
}

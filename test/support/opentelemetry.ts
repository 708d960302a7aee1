import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

/** Reads the metrics on demand: collect() is what a Prometheus scrape or a periodic export does. */
class OnDemandReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export interface TestOpenTelemetry {
  /** Every span ended, kept in memory (`getFinishedSpans()`, `reset()`). */
  spans: InMemorySpanExporter;
  /** With `metrics: true`: the reader a test collects the metrics from. */
  reader?: MetricReader;
  /** Shuts the providers down and unregisters everything, so the next suite starts from no SDK. */
  unregister(): Promise<void>;
}

/**
 * Registers the OpenTelemetry SDK an instrumented app would: async context, W3C propagation, a
 * tracer provider (and, with `metrics`, a meter provider). Call it before the app boots, as Warren
 * (like any instrumentation) looks for them at boot. `serviceName` goes on the SDK's resource, where
 * the docs tell an app to set it.
 */
export function registerTestOpenTelemetry(
  options: { metrics?: boolean; serviceName?: string } = {},
): TestOpenTelemetry {
  const resource = options.serviceName ? resourceFromAttributes({ 'service.name': options.serviceName }) : undefined;
  const spans = new InMemorySpanExporter();
  const tracerProvider = new TracerProvider({
    resource,
    spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
  });
  const reader = options.metrics ? new OnDemandReader() : undefined;
  const meterProvider = reader && new MeterProvider({ resource, readers: [reader] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(tracerProvider);
  if (meterProvider) metrics.setGlobalMeterProvider(meterProvider);
  return {
    spans,
    reader,
    async unregister() {
      await tracerProvider.shutdown();
      await meterProvider?.shutdown();
      trace.disable();
      metrics.disable();
      propagation.disable();
      context.disable();
    },
  };
}

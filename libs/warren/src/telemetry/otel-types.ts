/**
 * The few parts of @opentelemetry/api's tracing and metrics that Warren calls, typed here (as
 * `tracing/trace-context.ts` types propagation) so that Warren's own types need no @opentelemetry:
 * the API is an optional peer dependency.
 */

export type Attributes = Record<string, string | number | boolean | undefined>;

/** SpanKind's values in the API: PRODUCER, CONSUMER and CLIENT are the messaging ones. */
export const SPAN_KIND = { CLIENT: 2, PRODUCER: 3, CONSUMER: 4 } as const;
/** SpanStatusCode.ERROR. */
export const STATUS_ERROR = 2;

export interface Span {
  setAttribute(key: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  recordException(exception: Error | string): void;
  end(): void;
}

/** A span's identity, as a link names it; only passed through, never read. */
export type SpanContext = object;

export interface Tracer {
  startSpan(
    name: string,
    options: { kind: number; attributes: Attributes; links?: { context: SpanContext }[] },
    context?: unknown,
  ): Span;
}

export interface TracerProvider {
  getTracer(name: string, version?: string): Tracer;
  /** On the API's global ProxyTracerProvider: the SDK registered, or the no-op one. */
  getDelegate?(): unknown;
}

export interface Counter {
  add(value: number, attributes?: Attributes): void;
}

export interface Histogram {
  record(value: number, attributes?: Attributes): void;
}

export interface ObservableResult {
  observe(value: number, attributes?: Attributes): void;
}

export interface ObservableGauge {
  addCallback(callback: (result: ObservableResult) => void): void;
}

interface InstrumentOptions {
  description?: string;
  unit?: string;
  advice?: { explicitBucketBoundaries?: number[] };
}

export interface Meter {
  createCounter(name: string, options?: InstrumentOptions): Counter;
  createHistogram(name: string, options?: InstrumentOptions): Histogram;
  createObservableGauge(name: string, options?: InstrumentOptions): ObservableGauge;
}

/** What Warren reads of the API beyond propagation. */
export interface TelemetryApi {
  context: { active(): unknown; with<R>(context: unknown, fn: () => R): R };
  propagation: {
    inject(context: unknown, carrier: Record<string, unknown>): void;
    extract(context: unknown, carrier: Record<string, unknown>, getter: unknown): unknown;
    fields(): string[];
  };
  trace: {
    getTracerProvider(): TracerProvider;
    setSpan(context: unknown, span: Span): unknown;
    getActiveSpan(): Span | undefined;
    getSpanContext(context: unknown): SpanContext | undefined;
  };
  metrics: { getMeterProvider(): { getMeter(name: string, version?: string): Meter } };
  ProxyTracerProvider: new () => TracerProvider;
  createNoopMeter(): Meter;
}

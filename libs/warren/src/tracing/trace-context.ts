/**
 * W3C trace context over AMQP headers, through @opentelemetry/api when the app has it. The API
 * is an optional peer dependency: Warren loads it once at boot, and without it the publish and
 * delivery paths cost one `if` and nothing else.
 */

type Carrier = Record<string, unknown>;

interface TextMapGetter {
  keys(carrier: Carrier): string[];
  get(carrier: Carrier, key: string): string | undefined;
}

/** The few parts of @opentelemetry/api Warren uses, typed here so its own types need no @opentelemetry. */
export interface OpenTelemetryApi {
  context: {
    active(): unknown;
    with<R>(context: unknown, fn: () => R): R;
  };
  propagation: {
    inject(context: unknown, carrier: Carrier): void;
    extract(context: unknown, carrier: Carrier, getter: TextMapGetter): unknown;
    fields(): string[];
  };
}

/** @opentelemetry/api once `loadOpenTelemetry()` found it; undefined without it. */
export let openTelemetry: OpenTelemetryApi | undefined;

let loading: Promise<void> | undefined;

// In a variable so that TypeScript and bundlers leave the import to run time: the package may
// well not be installed, and nothing in Warren's own types may depend on it.
const OPENTELEMETRY_API = '@opentelemetry/api';

/** Loads @opentelemetry/api if the app can import it; every call after the first is the same promise. */
export function loadOpenTelemetry(): Promise<void> {
  loading ??= import(OPENTELEMETRY_API).then(
    (loaded: Partial<OpenTelemetryApi> & { default?: OpenTelemetryApi }) => {
      // The CommonJS build gets the module through an interop wrapper that may nest it in `default`.
      const api = loaded.propagation ? (loaded as OpenTelemetryApi) : loaded.default;
      if (api?.propagation && api.context) openTelemetry = api;
    },
    () => undefined,
  );
  return loading;
}

/**
 * The headers to publish with: the caller's, plus what the app's propagator writes for the active
 * context (`traceparent`, `tracestate`, and e.g. `baggage`). A `traceparent` the caller set wins:
 * it is passed through alone, since the rest of the active context belongs to another trace.
 */
export function withTraceContext(api: OpenTelemetryApi, headers: Carrier | undefined): Carrier | undefined {
  if (headers?.traceparent !== undefined || !propagates(api)) return headers;
  const carrier: Carrier = {};
  api.propagation.inject(api.context.active(), carrier);
  // No span active (or no propagator registered): the caller's headers go as they are.
  return Object.keys(carrier).length === 0 ? headers : { ...carrier, ...headers };
}

/** Runs `fn` inside the context the message's headers carry, so the spans it starts are children of the sender's. */
export function runInTraceContext<R>(api: OpenTelemetryApi, headers: Carrier | undefined, fn: () => R): R {
  if (headers === undefined || !propagates(api)) return fn();
  return api.context.with(extractTraceContext(api, headers), fn);
}

/**
 * Whether the app registered a propagator. The API alone (installed, as it often is through
 * another dependency, with no SDK) has the no-op one, which names no fields, injects nothing and
 * extracts the context it is given: then there is nothing to carry either way, and skipping the
 * carrier, the extraction and `context.with` per message is what keeps "the API installed but
 * unused" as cheap as no API (bench scenario 13 measured 1.16× CPU per pub/sub message before).
 * Asked per message, not once at boot, since an app may register its SDK after Warren's boot.
 */
function propagates(api: OpenTelemetryApi): boolean {
  return api.propagation.fields().length > 0;
}

/** The context the message's headers carry (the active one when they carry none). */
export function extractTraceContext(api: OpenTelemetryApi, headers: Carrier | undefined): unknown {
  const active = api.context.active();
  return headers === undefined ? active : api.propagation.extract(active, headers, headerGetter);
}

/** AMQP header values arrive as strings, or as Buffers from clients that send them as byte arrays. */
const headerGetter: TextMapGetter = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    if (typeof value === 'string') return value;
    return Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
  },
};

import type { INestApplication, Logger } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * `GET /metrics` in Prometheus' text format: Warren's metrics (it reports through the OpenTelemetry
 * metrics API) and the HTTP server's, read by OpenTelemetry's Prometheus exporter as a pull reader
 * of one MeterProvider. The exporter serves on the API's own port (`preventServerStart`), so a
 * scrape needs no second port.
 *
 * The OpenTelemetry packages are loaded at run time: a deployment that leaves them out still
 * starts, and `/metrics` says what is missing.
 */
export interface OrdersMetrics {
  /** Adds `GET /metrics` and the HTTP server's request metrics to the app; before `listen()`. */
  setup(app: INestApplication): void;
  shutdown(): Promise<void>;
}

// In variables, so TypeScript leaves the imports to run time: the packages may be absent.
const API = '@opentelemetry/api';
const SDK_METRICS = '@opentelemetry/sdk-metrics';
const PROMETHEUS = '@opentelemetry/exporter-prometheus';
const RESOURCES = '@opentelemetry/resources';

/**
 * The service's name on everything it reports: the SDK's resource (`service.name`), which an
 * exporter attaches to all of it (Prometheus: the `target_info` series), not an attribute of each
 * metric. `OTEL_SERVICE_NAME` overrides it, as in every OpenTelemetry SDK.
 */
export const SERVICE_NAME = 'orders';

interface Loaded {
  api: typeof import('@opentelemetry/api');
  sdk: typeof import('@opentelemetry/sdk-metrics');
  prometheus: typeof import('@opentelemetry/exporter-prometheus');
  resources: typeof import('@opentelemetry/resources');
}

/**
 * Registers the MeterProvider that `/metrics` reads. Called before the app is created: Warren
 * looks for a registered MeterProvider when it connects, and without one records nothing.
 */
export async function startOrdersMetrics(logger: Logger): Promise<OrdersMetrics> {
  let loaded: Loaded;
  try {
    loaded = {
      api: (await import(API)) as Loaded['api'],
      sdk: (await import(SDK_METRICS)) as Loaded['sdk'],
      prometheus: (await import(PROMETHEUS)) as Loaded['prometheus'],
      resources: (await import(RESOURCES)) as Loaded['resources'],
    };
  } catch (err) {
    const why = `GET /metrics is off: ${(err as Error).message.split('\n')[0]} (install ${API}, ${SDK_METRICS}, ${PROMETHEUS} and ${RESOURCES})`;
    logger.warn(why);
    return metricsOff(why);
  }
  const { api, sdk, prometheus, resources } = loaded;
  const exporter = new prometheus.PrometheusExporter({ preventServerStart: true });
  const resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ 'service.name': process.env.OTEL_SERVICE_NAME || SERVICE_NAME }));
  const provider = new sdk.MeterProvider({ resource, readers: [exporter] });
  api.metrics.setGlobalMeterProvider(provider);
  // The HTTP server's duration histogram, named and labelled as OpenTelemetry's HTTP conventions say.
  const requests = provider.getMeter('orders-http').createHistogram('http.server.request.duration', {
    description: 'Duration of HTTP server requests',
    unit: 's',
    advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] },
  });
  return {
    setup(app) {
      app.use((req: IncomingMessage & { route?: { path?: unknown } }, res: ServerResponse, next: () => void) => {
        const started = performance.now();
        res.once('finish', () => {
          const route = req.route?.path;
          requests.record((performance.now() - started) / 1000, {
            'http.request.method': req.method ?? '_OTHER',
            // The route's template, never the raw path: an order id per series would grow for ever.
            ...(typeof route === 'string' && { 'http.route': route }),
            'http.response.status_code': res.statusCode,
          });
        });
        next();
      });
      app
        .getHttpAdapter()
        .get('/metrics', (req: IncomingMessage, res: ServerResponse) => exporter.getMetricsRequestHandler(req, res));
    },
    async shutdown() {
      await provider.shutdown();
      api.metrics.disable();
    },
  };
}

function metricsOff(why: string): OrdersMetrics {
  return {
    setup(app) {
      app.getHttpAdapter().get('/metrics', (_req: IncomingMessage, res: ServerResponse) => {
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`${why}\n`);
      });
    },
    shutdown: () => Promise.resolve(),
  };
}

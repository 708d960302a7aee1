import { metrics, trace } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { TracerProvider } from '@opentelemetry/sdk-trace';
import { loadOpenTelemetry } from '../tracing/trace-context.js';
import * as telemetry from './telemetry.js';

afterEach(() => {
  trace.disable();
  metrics.disable();
  telemetry.startTelemetry();
});

describe('startTelemetry', () => {
  it('finds no SDK when none is registered: no tracer and no instruments, so the message paths skip them', async () => {
    await loadOpenTelemetry();
    telemetry.startTelemetry();
    expect(telemetry.tracer).toBeUndefined();
    expect(telemetry.instruments).toBeUndefined();
    expect(telemetry.telemetryApi).toBeUndefined();
  });

  it('uses the SDK registered before the boot, tracing and metrics each on its own', async () => {
    await loadOpenTelemetry();
    trace.setGlobalTracerProvider(new TracerProvider());
    telemetry.startTelemetry();
    expect(telemetry.tracer).toBeDefined();
    expect(telemetry.instruments).toBeUndefined();

    metrics.setGlobalMeterProvider(new MeterProvider());
    telemetry.startTelemetry();
    const made = telemetry.instruments;
    expect(made).toBeDefined();
    // Another connection's boot with the same provider keeps the instruments (and their gauges) as they are.
    telemetry.startTelemetry();
    expect(telemetry.instruments).toBe(made);
  });
});

import { jest } from '@jest/globals';
import * as api from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { type OpenTelemetryApi, runInTraceContext, withTraceContext } from './trace-context.js';

const otel = api as unknown as OpenTelemetryApi;
const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('trace context with @opentelemetry/api installed', () => {
  afterEach(() => {
    api.propagation.disable();
    api.context.disable();
    jest.restoreAllMocks();
  });

  describe('and no propagator registered (the API alone, no SDK)', () => {
    it('publishes the caller headers as they are, without asking the API for a carrier', () => {
      const inject = jest.spyOn(api.propagation, 'inject');
      const headers = { 'x-order': 7 };
      expect(withTraceContext(otel, headers)).toBe(headers);
      expect(withTraceContext(otel, undefined)).toBeUndefined();
      expect(inject).not.toHaveBeenCalled();
    });

    it('runs the handler directly, with no extraction and no context switch', () => {
      api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      const extract = jest.spyOn(api.propagation, 'extract');
      const withContext = jest.spyOn(api.context, 'with');
      expect(runInTraceContext(otel, { traceparent }, () => 'ran')).toBe('ran');
      expect(extract).not.toHaveBeenCalled();
      expect(withContext).not.toHaveBeenCalled();
    });
  });

  describe('and a propagator registered after Warren loaded the API', () => {
    beforeEach(() => {
      api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    });

    it('carries the active span context on a publish', () => {
      const sender = api.trace.setSpanContext(api.context.active(), {
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        traceFlags: api.TraceFlags.SAMPLED,
      });
      const headers = api.context.with(sender, () => withTraceContext(otel, { 'x-order': 7 }));
      expect(headers).toEqual({ traceparent, 'x-order': 7 });
    });

    it('runs the handler in the context the delivery carries', () => {
      const seen = runInTraceContext(otel, { traceparent }, () => api.trace.getSpanContext(api.context.active()));
      expect(seen).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' });
    });
  });
});

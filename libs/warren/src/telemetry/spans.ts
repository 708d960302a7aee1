import type { Message, Options } from 'amqplib';
import { extractTraceContext } from '../tracing/trace-context.js';
import { ATTR, RABBITMQ } from './attributes.js';
import { errorType } from './instruments.js';
import type { Settlement } from './outcomes.js';
import {
  type Attributes,
  SPAN_KIND,
  type SpanContext,
  STATUS_ERROR,
  type Span,
  type TelemetryApi,
  type Tracer,
} from './otel-types.js';

/**
 * Spans per OpenTelemetry's messaging conventions, named `<operation> <destination>`. On the
 * default exchange the destination is the queue the routing key names (`messaging.destination.name`
 * stays '', as the RabbitMQ conventions say).
 */

/**
 * A publish (PRODUCER): started before the message is encoded, so the trace context it carries is
 * this span's. Spans carry what the RabbitMQ conventions require and recommend; the body's size is
 * opt-in there, and left out.
 */
export function startPublishSpan(tracer: Tracer, exchange: string, routingKey: string, messageId?: string): Span {
  const attributes: Attributes = {
    [ATTR.system]: RABBITMQ,
    [ATTR.operationType]: 'send',
    [ATTR.operationName]: 'publish',
    [ATTR.destination]: exchange,
  };
  // Only what the message has: the SDK warns of every undefined value.
  if (routingKey) attributes[ATTR.routingKey] = routingKey;
  if (messageId !== undefined) attributes[ATTR.messageId] = messageId;
  return tracer.startSpan(`publish ${exchange || routingKey}`, { kind: SPAN_KIND.PRODUCER, attributes });
}

/** An RPC call (CLIENT), from the request to its reply, timeout or error. */
export function startRpcSpan(
  tracer: Tracer,
  queue: string,
  exchange: string,
  routingKey: string,
  correlationId: string,
): Span {
  return tracer.startSpan(`call ${queue}`, {
    kind: SPAN_KIND.CLIENT,
    attributes: {
      [ATTR.system]: RABBITMQ,
      [ATTR.operationType]: 'send',
      [ATTR.operationName]: 'call',
      [ATTR.destination]: exchange,
      [ATTR.routingKey]: routingKey,
      [ATTR.conversationId]: correlationId,
    },
  });
}

/** One delivery's processing (CONSUMER), a child of the context the message carries (`parent`). */
export function startProcessSpan(
  tracer: Tracer,
  queue: string,
  handler: string,
  fields: { exchange: string; routingKey: string; deliveryTag: number },
  properties: Options.Publish & { headers?: Record<string, unknown> },
  attempt: number,
  parent: unknown,
): Span {
  const attributes: Attributes = {
    [ATTR.system]: RABBITMQ,
    [ATTR.operationType]: 'process',
    [ATTR.operationName]: 'process',
    [ATTR.destination]: fields.exchange,
    [ATTR.deliveryTag]: fields.deliveryTag,
    [ATTR.consumerGroup]: queue,
    [ATTR.handler]: handler,
    [ATTR.attempt]: attempt,
  };
  if (fields.routingKey) attributes[ATTR.routingKey] = fields.routingKey;
  if (properties.messageId !== undefined) attributes[ATTR.messageId] = properties.messageId;
  if (properties.correlationId !== undefined) attributes[ATTR.conversationId] = properties.correlationId;
  return tracer.startSpan(`process ${queue}`, { kind: SPAN_KIND.CONSUMER, attributes }, parent);
}

/**
 * A batch handler's invocation (CONSUMER): one span for the batch, as the conventions ask of batch
 * processing, linked to each message's sender context rather than a child of any one of them. Its
 * destination is named only when every message came through the same exchange.
 */
export function startBatchSpan(
  tracer: Tracer,
  api: TelemetryApi,
  queue: string,
  handler: string,
  messages: readonly Message[],
): Span {
  const links: { context: SpanContext }[] = [];
  const exchange = messages[0].fields.exchange;
  let sameExchange = true;
  for (const message of messages) {
    if (message.fields.exchange !== exchange) sameExchange = false;
    const headers = message.properties.headers;
    // Only a message that carries a context has one to link: extracting from none yields the active one.
    if (headers?.traceparent === undefined) continue;
    const context = api.trace.getSpanContext(extractTraceContext(api, headers));
    if (context) links.push({ context });
  }
  const attributes: Attributes = {
    [ATTR.system]: RABBITMQ,
    [ATTR.operationType]: 'process',
    [ATTR.operationName]: 'process',
    [ATTR.consumerGroup]: queue,
    [ATTR.batchCount]: messages.length,
    [ATTR.handler]: handler,
  };
  if (sameExchange) attributes[ATTR.destination] = exchange;
  return tracer.startSpan(`process ${queue}`, { kind: SPAN_KIND.CONSUMER, attributes, links });
}

/** Ends a delivery's span with what became of it; a failed handler's error sets the span's error status. */
export function endProcessSpan(span: Span, settlement: Settlement, error: unknown, failed: boolean): void {
  span.setAttribute(ATTR.outcome, settlement.outcome);
  if (settlement.reason !== undefined) span.setAttribute(ATTR.deadLetterReason, settlement.reason);
  if (failed) failSpan(span, error);
  span.end();
}

/**
 * Sets the error status on the delivery's span from inside its processing: an RPC handler's error
 * becomes an error reply and the request is still acked, yet the server's span should show it.
 */
export function failActiveSpan(api: TelemetryApi, error: unknown): void {
  const span = api.trace.getActiveSpan();
  if (span) failSpan(span, error);
}

/** Ends a span, with the error status and the exception when `error` is set. */
export function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined) failSpan(span, error);
  span.end();
}

function failSpan(span: Span, error: unknown): void {
  span.setAttribute(ATTR.errorType, errorType(error));
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: STATUS_ERROR, message: error instanceof Error ? error.message : String(error) });
}

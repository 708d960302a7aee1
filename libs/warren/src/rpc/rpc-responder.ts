import { HttpException, Inject, Injectable, Logger } from '@nestjs/common';
import type { Options } from 'amqp-connection-manager';
import { WarrenConnection } from '../connection/warren-connection.js';
import { callHandler, type Handler, isThenable } from '../consumer/handler-invoker.js';
import { type Encoded, encodePayload, TEXT_CONTENT_TYPE } from '../codec/message-codec.js';
import { MessageCodecs } from '../codec/codecs.js';
import type { DeliveryHandler } from '../consumer/message-consumer.js';
import type { WarrenContext } from '../consumer/warren-context.js';
import { RPC_ERROR_HEADER, type RpcErrorBody } from './rpc-wire.js';
import { type ReplyOutcome, RpcReplySender } from './rpc-reply-sender.js';
import { WARREN_MODULE_OPTIONS, warrenLoggerContext, type WarrenModuleOptions } from '../warren.options.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';
import { errorField, errorMessage, errorName } from '../validation/describe-error.js';
import { telemetryApi, tracer } from '../telemetry/telemetry.js';
import { failActiveSpan } from '../telemetry/spans.js';

/**
 * The server half of RPC: turns a handler into a delivery handler that replies to `reply_to`.
 * Replies go out on the publishing connection; the request is acked (by the consumer) only
 * after the reply has been written, so a server dying in between leaves the request to be
 * redelivered — clients drop the duplicate reply by its correlation id.
 */
@Injectable()
export class RpcResponder {
  private readonly logger: Logger;
  private readonly replies: RpcReplySender;
  private readonly maxBytes: number;
  private readonly codecs: MessageCodecs;

  constructor(connection: WarrenConnection, @Inject(WARREN_MODULE_OPTIONS) options: WarrenModuleOptions) {
    this.logger = new Logger(warrenLoggerContext(options));
    this.codecs = new MessageCodecs(options.codecs);
    this.maxBytes = options.maxMessageBytes ?? WARREN_DEFAULTS.maxMessageBytes;
    this.replies = new RpcReplySender(connection, this.logger);
  }

  responderFor(handler: Handler, label: string, options: { exposeErrorStack: boolean }): DeliveryHandler {
    // Not async: a handler that returns a plain value is replied to in the same tick.
    const respond: DeliveryHandler = (payload, context) => {
      let result: unknown;
      try {
        result = callHandler(handler, payload, context);
      } catch (err) {
        return this.answerError(label, context, err, options.exposeErrorStack);
      }
      if (!isThenable(result)) return this.answer(label, context, result, options.exposeErrorStack);
      return Promise.resolve(result).then(
        (value) => this.answer(label, context, value, options.exposeErrorStack),
        (err: unknown) => this.answerError(label, context, err, options.exposeErrorStack),
      );
    };
    // A request that cannot be read gets an error reply (its caller learns why at once); the
    // consumer's failure policy then dead-letters it.
    respond.onPoison = async (context, err) => {
      if (context.properties.replyTo) await this.send(label, context, encodeError(err, false), true);
    };
    return respond;
  }

  /** The handler's result as the reply; an error reply when it cannot be encoded. */
  private answer(label: string, context: WarrenContext, result: unknown, exposeStack: boolean): Promise<void> {
    let reply: Encoded;
    try {
      reply = encodeReply(result, context, this.codecs);
    } catch (err) {
      return this.answerError(label, context, err, exposeStack);
    }
    return this.sendWithinLimit(label, context, reply, false);
  }

  private answerError(label: string, context: WarrenContext, err: unknown, exposeStack: boolean): Promise<void> {
    if (tracer) failActiveSpan(telemetryApi!, err);
    const reply = encodeError(err, exposeStack);
    this.logger.warn(`${label}: handler threw, sending an error reply: ${reply.content.toString('utf8')}`);
    return this.sendWithinLimit(label, context, reply, true);
  }

  private sendWithinLimit(label: string, context: WarrenContext, reply: Encoded, isError: boolean): Promise<void> {
    // Known too large before it is sent; one over the broker's own max_message_size, when that is
    // lower, is known by its refusal (rpc-reply-sender.ts). Either way the caller learns at once.
    if (reply.content.length > this.maxBytes) {
      const tooLarge = `the reply is ${reply.content.length} bytes, over the limit of ${this.maxBytes} (maxMessageBytes)`;
      this.logger.error(`${label}: ${tooLarge}; sending an error reply instead`);
      reply = encodeError({ name: 'RpcReplyTooLargeError', message: tooLarge }, false);
      isError = true;
    }
    return this.send(label, context, reply, isError);
  }

  private send(label: string, context: WarrenContext, reply: Encoded, isError: boolean): Promise<void> {
    const { replyTo, correlationId } = context.properties;
    if (!replyTo) {
      this.logger.warn(`${label}: request without reply_to on queue "${context.queue}" processed; no reply sent`);
      return Promise.resolve();
    }
    const properties: Options.Publish = {
      correlationId: correlationId as string | undefined,
      contentType: reply.contentType,
      headers: isError ? { [RPC_ERROR_HEADER]: true } : undefined,
      persistent: false,
    };
    return this.replies
      .send(replyTo, reply.content, properties)
      .then((outcome) => (outcome.sent ? undefined : this.notSent(label, replyTo, properties, outcome)));
  }

  private async notSent(
    label: string,
    replyTo: string,
    properties: Options.Publish,
    outcome: Exclude<ReplyOutcome, { sent: true }>,
  ): Promise<void> {
    const correlationId = properties.correlationId;
    switch (outcome.reason) {
      case 'too-large': {
        // Lower than maxMessageBytes: the caller learns the broker's limit at once, not at its timeout.
        const tooLarge = `the reply is ${outcome.size} bytes, over the broker's max_message_size of ${outcome.maxSize}`;
        this.logger.error(`${label}: ${tooLarge}; sending an error reply instead`);
        const error = encodeError({ name: 'RpcReplyTooLargeError', message: tooLarge }, false);
        await this.replies.send(replyTo, error.content, {
          ...properties,
          contentType: error.contentType,
          headers: { [RPC_ERROR_HEADER]: true },
        });
        return;
      }
      case 'attempts-exhausted':
        this.logger.warn(
          `${label}: the reply to correlation_id ${String(correlationId)} was lost with its connection each time it was sent; its caller will time out`,
        );
        return;
      case 'dead-destination':
      case 'closed':
        return;
    }
  }
}

/**
 * A request in a content type of the module's codecs (MessagePack...) gets its reply in the same
 * type. A request that came as plain bytes (another language's client, no content type) gets a
 * plain text reply when the result is a scalar: `832040`, not `"832040"`. Everything else is JSON.
 * Error replies are always JSON: their body is Warren's own (`rpc-wire.ts`).
 */
function encodeReply(result: unknown, context: WarrenContext, codecs: MessageCodecs): Encoded {
  const requestType = context.properties.contentType as string | undefined;
  // A handler with nothing to return (void) still answers: the caller learns it is done.
  if (result === undefined) result = null;
  if (codecs.has(requestType)) return codecs.encode(result, requestType);
  if (result === null) return encodePayload(null);
  const plainRequest = requestType === undefined || requestType.startsWith('text/');
  if (plainRequest && (typeof result === 'string' || typeof result === 'number' || typeof result === 'boolean')) {
    return { content: Buffer.from(String(result), 'utf8'), contentType: TEXT_CONTENT_TYPE };
  }
  return encodePayload(result);
}

function encodeError(err: unknown, exposeStack: boolean): Encoded {
  const body: RpcErrorBody = describeError(err);
  if (!exposeStack) delete body.stack;
  try {
    return encodePayload(body);
  } catch {
    return encodePayload({ name: 'Error', message: 'the handler failed with an error that cannot be described' });
  }
}

/**
 * What an error reply says about a thrown value. Exception filters written for
 * @nestjs/microservices throw plain objects (`{ status: 'error', message }`, an RpcException's
 * error): their `message`, `name` and `code` are used as an Error's would be. Never throws,
 * whatever was thrown (a getter that throws, a Proxy): the caller always gets its reply.
 */
function describeError(err: unknown): RpcErrorBody {
  const body: RpcErrorBody = { name: errorName(err), message: errorMessage(err) };
  const code = errorField(err, 'code');
  if (typeof code === 'string' || typeof code === 'number') body.code = code;
  // A 400 the pipes threw arrives wrapped (PayloadValidationError, for the failure policy): its
  // HttpException is the cause.
  const http = httpExceptionOf(err) ?? httpExceptionOf(errorField(err, 'cause'));
  if (http) {
    body.status = http.status;
    body.response = http.response;
  }
  const stack = errorField(err, 'stack');
  if (typeof stack === 'string') body.stack = stack;
  return body;
}

/**
 * An `HttpException`'s status and response, recognised by its methods rather than `instanceof`:
 * an app can hold two copies of @nestjs/common (a library's own), whose classes differ. Undefined
 * when the value is none, or when asking it throws.
 */
function httpExceptionOf(value: unknown): { status: number; response: unknown } | undefined {
  try {
    const v = value as { getStatus?: unknown; getResponse?: unknown } | null;
    if (v === null || typeof v !== 'object') return undefined;
    if (!(v instanceof HttpException) && (typeof v.getStatus !== 'function' || typeof v.getResponse !== 'function'))
      return undefined;
    const status = (v.getStatus as () => unknown).call(v);
    if (typeof status !== 'number' || !Number.isInteger(status)) return undefined;
    return { status, response: (v.getResponse as () => unknown).call(v) };
  } catch {
    return undefined;
  }
}

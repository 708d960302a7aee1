import { HttpException, Inject, Injectable, Logger } from '@nestjs/common';
import type { ChannelWrapper } from 'amqp-connection-manager';
import { WarrenConnection } from '../connection/warren-connection.js';
import { publishUnconfirmed } from '../connection/amqp-compat.js';
import { type Handler, invokeHandler } from '../consumer/handler-invoker.js';
import { type Encoded, encodePayload, TEXT_CONTENT_TYPE } from '../codec/message-codec.js';
import { MessageCodecs } from '../codec/codecs.js';
import type { DeliveryHandler } from '../consumer/message-consumer.js';
import type { WarrenContext } from '../consumer/warren-context.js';
import { RPC_ERROR_HEADER, type RpcErrorBody } from './rpc-wire.js';
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
  private readonly channel: ChannelWrapper;
  private readonly maxBytes: number;
  private readonly codecs: MessageCodecs;

  constructor(connection: WarrenConnection, @Inject(WARREN_MODULE_OPTIONS) options: WarrenModuleOptions) {
    this.logger = new Logger(warrenLoggerContext(options));
    this.codecs = new MessageCodecs(options.codecs);
    this.maxBytes = options.maxMessageBytes ?? WARREN_DEFAULTS.maxMessageBytes;
    this.channel = connection.createChannel('publish', { name: 'rpc-replies', confirm: false });
  }

  responderFor(handler: Handler, label: string, options: { exposeErrorStack: boolean }): DeliveryHandler {
    const respond: DeliveryHandler = async (payload, context) => {
      let reply: Encoded;
      let isError = false;
      try {
        reply = encodeReply(await invokeHandler(handler, payload, context), context, this.codecs);
      } catch (err) {
        isError = true;
        if (tracer) failActiveSpan(telemetryApi!, err);
        reply = encodeError(err, options.exposeErrorStack);
        this.logger.warn(`${label}: handler threw, sending an error reply: ${reply.content.toString('utf8')}`);
      }
      // A reply the broker would refuse (over its max_message_size, which maxMessageBytes should
      // not exceed) would close the reply channel and be lost, the request acked: the caller
      // learns at once instead of at its timeout.
      if (reply.content.length > this.maxBytes) {
        const tooLarge = `the reply is ${reply.content.length} bytes, over the limit of ${this.maxBytes} (maxMessageBytes)`;
        this.logger.error(`${label}: ${tooLarge}; sending an error reply instead`);
        reply = encodeError({ name: 'RpcReplyTooLargeError', message: tooLarge }, false);
        isError = true;
      }
      await this.send(label, context, reply, isError);
    };
    // A request that cannot be read gets an error reply (its caller learns why at once); the
    // consumer's failure policy then dead-letters it.
    respond.onPoison = async (context, err) => {
      if (context.properties.replyTo) await this.send(label, context, encodeError(err, false), true);
    };
    return respond;
  }

  private async send(label: string, context: WarrenContext, reply: Encoded, isError: boolean): Promise<void> {
    const { replyTo, correlationId } = context.properties;
    if (!replyTo) {
      this.logger.warn(`${label}: request without reply_to on queue "${context.queue}" processed; no reply sent`);
      return;
    }
    const properties = {
      correlationId,
      contentType: reply.contentType,
      headers: isError ? { [RPC_ERROR_HEADER]: true } : undefined,
      persistent: false,
    };
    if (publishUnconfirmed(this.channel, '', replyTo, reply.content, properties)) return;
    await this.channel.publish('', replyTo, reply.content, properties);
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

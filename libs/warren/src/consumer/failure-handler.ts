import { Logger } from '@nestjs/common';
import type { Options } from 'amqplib';
import { redactCredentials } from '../connection/redact.js';
import { propertiesProblem } from '../publisher/amqp-headers.js';
import { describeError, errorField, errorMessage, errorName } from '../validation/describe-error.js';
import { type NoHandlerError, PoisonMessageError } from '../warren.errors.js';
import { ATTEMPT_HEADER, FAILURE_HEADERS, type FailurePolicy, retryQueueName } from '../topology/failure-policy.js';
import type { WarrenContext } from './warren-context.js';
import {
  deadLetteredFor,
  DROPPED,
  MANUAL,
  REJECTED,
  REQUEUED,
  RETRIED,
  type Settlement,
} from '../telemetry/outcomes.js';

/** Publishes a copy of a message with the broker's confirm; provided by the Publisher. */
export type Republish = (
  exchange: string,
  routingKey: string,
  content: Buffer,
  properties: Options.Publish,
  /** Through the delay ladder, arriving after this many ms (a retry with `retryThrough: 'delay-ladder'`). */
  delay?: number,
) => Promise<void>;

/**
 * Carries out a consumer's failure policy for one failed delivery. A copy goes to a retry queue
 * or the dead-letter queue and is confirmed by the broker before the original is acked, so a
 * crash in between can duplicate a message but never lose it.
 */
export class FailureHandler {
  private readonly logger: Logger;

  constructor(
    private readonly policy: FailurePolicy,
    private readonly label: string,
    private readonly republish: Republish,
    /** `Warren`, or `Warren:<name>` on a named connection. */
    loggerContext: string,
  ) {
    this.logger = new Logger(loggerContext);
  }

  /** Applies the policy; resolves with what became of the delivery, for its span and metrics. */
  async onFailure(context: WarrenContext, err: unknown): Promise<Settlement> {
    const poison = err instanceof PoisonMessageError;
    const attempt = context.attempt;
    const reason = describe(err);
    // The original route, on every attempt: the retry's own route (the default exchange) would say nothing.
    const where = `${this.label}: message from exchange "${context.exchange}" with routing key "${context.routingKey}"`;
    const { mode, deadLetter, retryDelays } = this.policy;

    if (mode === 'manual' && !poison) {
      if (!context.isSettled) {
        this.logger.error(
          `${where} failed before the handler settled it; rejected without requeue: ${reason}`,
          stackOf(err),
        );
        context.nack({ requeue: false });
        return REJECTED;
      }
      return MANUAL;
    }
    if (context.isSettled) return MANUAL;
    if (poison) {
      if (deadLetter)
        return this.deadLetter(
          context,
          err,
          'poison',
          attempt,
          `${where} is poison (${reason}); dead-lettered, not retried`,
        );
      this.logger.error(
        `${where} is poison (${reason}); rejected without requeue (the queue has no dead-letter queue)`,
      );
      context.nack({ requeue: false });
      return REJECTED;
    }
    switch (mode) {
      case 'retry':
        if (attempt <= retryDelays.length)
          return this.retry(
            context,
            err,
            attempt,
            retryDelays[attempt - 1],
            `${where} failed (attempt ${attempt}): ${reason}`,
          );
        return this.deadLetter(
          context,
          err,
          'attempts-exhausted',
          attempt,
          `${where} failed ${attempt} times (${reason}); dead-lettered`,
          stackOf(err),
        );
      case 'dead-letter':
        return this.deadLetter(
          context,
          err,
          'handler-error',
          attempt,
          `${where} failed (${reason}); dead-lettered`,
          stackOf(err),
        );
      case 'requeue':
        this.logger.warn(`${where} failed (${reason}); requeued in ${this.policy.requeueDelayMs} ms`);
        // The pause keeps a handler that always fails from spinning on the same message.
        await new Promise((resolve) => setTimeout(resolve, this.policy.requeueDelayMs));
        context.nack({ requeue: true });
        return REQUEUED;
      case 'drop':
      default:
        this.logger.error(`${where} failed and was dropped (acked): ${reason}`, stackOf(err));
        context.ack();
        return DROPPED;
    }
  }

  /**
   * A service queue's message that no handler of the queue takes: dead-lettered with reason
   * `no-handler`, or rejected without requeue where the queue has no dead-letter queue; never
   * acked, never requeued. The caller logs it, once per route rather than once per message.
   */
  async unhandled(context: WarrenContext, err: NoHandlerError): Promise<Settlement> {
    if (context.isSettled) return MANUAL;
    if (this.policy.deadLetter) return this.deadLetter(context, err, 'no-handler', context.attempt);
    context.nack({ requeue: false });
    return REJECTED;
  }

  private async retry(
    context: WarrenContext,
    err: unknown,
    attempt: number,
    delay: number,
    log: string,
  ): Promise<Settlement> {
    this.logger.warn(`${log}; retrying in ${delay} ms`);
    const headers = { [ATTEMPT_HEADER]: attempt + 1, ...originOf(context) };
    const deadLetterHeaders = () => this.deadLetterHeaders(context, err, 'handler-error', attempt);
    // Through the ladder the copy is sent to the queue by name with a delay, as `sendToQueue` would.
    if (this.policy.retryThrough === 'delay-ladder')
      return this.moveTo(context, '', context.queue, headers, deadLetterHeaders, RETRIED, delay);
    return this.moveTo(
      context,
      retryQueueName(delay, this.policy.retryQueueType),
      context.queue,
      headers,
      deadLetterHeaders,
      RETRIED,
    );
  }

  private async deadLetter(
    context: WarrenContext,
    err: unknown,
    reason: string,
    attempts: number,
    log?: string,
    stack?: string,
  ): Promise<Settlement> {
    if (log) this.logger.error(log, stack);
    const target = this.policy.deadLetter!;
    const headers = this.deadLetterHeaders(context, err, reason, attempts);
    return this.moveTo(context, target.exchange, target.routingKey, headers, () => headers, deadLetteredFor(reason));
  }

  private deadLetterHeaders(
    context: WarrenContext,
    err: unknown,
    reason: string,
    attempts: number,
  ): Record<string, unknown> {
    return {
      ...originOf(context),
      [FAILURE_HEADERS.reason]: reason,
      [FAILURE_HEADERS.errorName]: errorName(err),
      [FAILURE_HEADERS.errorMessage]: redactCredentials(errorMessage(err)).slice(0, 1000),
      [FAILURE_HEADERS.attempts]: attempts,
      [FAILURE_HEADERS.queue]: context.queue,
      [FAILURE_HEADERS.failedAt]: new Date().toISOString(),
    };
  }

  /**
   * Publishes a copy with extra headers, then acks the original; if the copy fails, requeues it.
   * A copy whose headers cannot be sent again (over amqplib's 64 KiB, a value AMQP cannot carry)
   * would fail every time: it goes to the dead-letter queue with only Warren's headers
   * (`deadLetterHeaders()`, plus why the others were dropped), or is rejected without requeue —
   * to the queue's own dead-letter exchange, if the broker has one for it.
   */
  private async moveTo(
    context: WarrenContext,
    exchange: string,
    routingKey: string,
    headers: Record<string, unknown>,
    deadLetterHeaders: () => Record<string, unknown>,
    /** What became of the delivery once the copy is confirmed. */
    moved: Settlement,
    /** A retry through the delay ladder: its delay. */
    delay?: number,
  ): Promise<Settlement> {
    const { properties, content } = context.message;
    const copy: Options.Publish = {
      contentType: properties.contentType,
      contentEncoding: properties.contentEncoding,
      headers: { ...properties.headers, ...headers },
      persistent: properties.deliveryMode === 2 || properties.deliveryMode === undefined,
      correlationId: properties.correlationId,
      replyTo: properties.replyTo,
      messageId: properties.messageId,
      timestamp: properties.timestamp,
      type: properties.type,
      appId: properties.appId,
      priority: properties.priority,
    };
    const problem = propertiesProblem(copy);
    if (problem) {
      const target = this.policy.deadLetter;
      if (!target) {
        this.logger.error(
          `${this.label}: a failed message cannot be sent on with its headers (${problem}); rejected without requeue`,
        );
        context.nack({ requeue: false });
        return REJECTED;
      }
      moved = deadLetteredFor(moved.reason ?? 'handler-error');
      this.logger.error(
        `${this.label}: a failed message cannot be sent on with its headers (${problem}); dead-lettered without them`,
      );
      exchange = target.exchange;
      routingKey = target.routingKey;
      delay = undefined;
      copy.headers = { ...deadLetterHeaders(), [FAILURE_HEADERS.droppedHeaders]: problem.slice(0, 1000) };
      // A timestamp near 2^64 comes off the wire rounded past what it can be sent again as.
      if (propertiesProblem(copy)) copy.timestamp = undefined;
      if (propertiesProblem(copy)) {
        context.nack({ requeue: false });
        return REJECTED;
      }
    }
    try {
      await this.republish(exchange, routingKey, content, copy, delay);
    } catch (err) {
      this.logger.error(
        `${this.label}: could not move a failed message to "${routingKey}" (${describe(err)}); requeued instead`,
      );
      context.nack({ requeue: true });
      return REQUEUED;
    }
    context.ack();
    return moved;
  }
}

/** Where the message first came from (the context reads it through a retry), for the next attempt to report it too. */
function originOf(context: WarrenContext): Record<string, unknown> {
  return { [FAILURE_HEADERS.exchange]: context.exchange, [FAILURE_HEADERS.routingKey]: context.routingKey };
}

/**
 * The stack of the error that ends a message's attempts, logged once with that line: the lines of
 * the attempts before it (one each, no stack) say what failed and that it is retried. A poison
 * message's stack is Warren's own decoding and says nothing, so it is left out.
 */
function stackOf(err: unknown): string | undefined {
  const stack = errorField(err, 'stack');
  return typeof stack === 'string' ? redactCredentials(stack) : undefined;
}

function describe(err: unknown): string {
  return redactCredentials(describeError(err));
}

import type { Channel, ConsumeMessage } from 'amqplib';
import { PoisonMessageError } from '../warren.errors.js';
import { WarrenContext } from './warren-context.js';

/**
 * The context of one message of a batch: a batch handler's second argument is an array of them,
 * in the order of the payloads. Besides `ack()`/`nack()`, a handler can fail single messages of
 * the batch: they go through the failure policy on their own, and the rest are acked when the
 * handler returns.
 */
export class BatchContext extends WarrenContext {
  private failure?: { error: unknown };

  constructor(
    message: ConsumeMessage,
    queue: string,
    channel: Channel,
    private readonly onFail: (context: BatchContext, error: unknown) => void,
  ) {
    super(message, queue, channel);
  }

  /**
   * This message failed: it goes through the handler's failure policy on its own (retried, then
   * dead-lettered, as if a single-message handler had thrown `error`), now, whatever the
   * handler does next. Ignored once the message is settled or failed.
   */
  fail(error: unknown): void {
    if (this.failure || this.isSettled) return;
    this.failure = { error };
    this.onFail(this, error);
  }

  /** This message is poison: dead-lettered at once (reason `poison`), never retried. */
  deadLetter(reason = 'dead-lettered by the batch handler'): void {
    this.fail(new PoisonMessageError(reason));
  }

  /** True once `fail()` or `deadLetter()` was called: the batch's ack leaves this message alone. */
  get isFailed(): boolean {
    return this.failure !== undefined;
  }
}

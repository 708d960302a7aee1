import type { Logger } from '@nestjs/common';
import type { ChannelWrapper, Options } from 'amqp-connection-manager';
import type { WarrenConnection } from '../connection/warren-connection.js';
import {
  isBrokerInternalError,
  isChannelClosedOnPublish,
  isWrapperClosedOnPublish,
  maxMessageSizeNamedBy,
  publishConfirmed,
} from '../connection/amqp-compat.js';
import { redactCredentials } from '../connection/redact.js';
import { DIRECT_REPLY_TO_PREFIX } from './rpc-wire.js';

/** Attempts at one reply whose connection or channel went away before the broker confirmed it. */
const MAX_REPLY_ATTEMPTS = 3;
/** Reply destinations remembered as dead: bounded, the oldest forgotten first. */
const MAX_DEAD_DESTINATIONS = 1000;

interface Reply {
  /** The calling channel (direct reply-to) or queue: what a dead destination is remembered by. */
  destination: string;
  replyTo: string;
  content: Buffer;
  properties: Options.Publish;
}

interface Retry {
  reply: Reply;
  attempt: number;
  resolve(outcome: ReplyOutcome): void;
  reject(err: Error): void;
}

const SENT: ReplyOutcome = Object.freeze({ sent: true });

/** Why a reply went out as something else, or not at all: what `RpcReplySender.send` resolves to. */
export type ReplyOutcome =
  | { sent: true }
  | { sent: false; reason: 'dead-destination' | 'attempts-exhausted' | 'closed' }
  | { sent: false; reason: 'too-large'; size: number; maxSize: number };

/**
 * Publishes RPC replies on a confirm channel of their own, so that a reply the broker did not take
 * is known, and one reply can never take the others with it.
 *
 * RabbitMQ 3.10 crashes the channel that publishes a reply to a direct reply-to address whose
 * node is down (`rabbit_channel:deliver_reply`, a `case_clause`), and the crash closes the whole
 * connection (541 INTERNAL_ERROR): every reply written after it on that connection is lost, though
 * its request is then acked. After a node loss the replies still owed to the callers that were on
 * that node (they failed at once with RpcChannelLostError) are exactly such replies, and they are
 * sent among the replies to the calls made since. So a reply lost with its connection or channel
 * is sent again, one at a time with nothing else in flight: one that then makes the broker fail
 * internally is the one at fault, its destination (the dead channel) is remembered and nothing is
 * sent there again; the others go through.
 *
 * A reply over the broker's `max_message_size` (lower than Warren's `maxMessageBytes`) is refused
 * with the channel: the caller is sent a small error reply instead (`too-large`).
 */
export class RpcReplySender {
  private readonly channel: ChannelWrapper;
  /** Why the broker last closed the reply channel, until the next one is open. */
  private refusal?: Error;
  /** How many times the publish connection was lost, and whether the last was the broker failing internally (541). */
  private losses = 0;
  private lastLossInternal = false;
  /** First attempts not yet confirmed or failed. */
  private inFlight = 0;
  private idle?: () => void;
  /** Replies sent again, one at a time; first attempts wait while it runs. */
  private lane?: Promise<void>;
  private readonly retries: Retry[] = [];
  private readonly dead = new Set<string>();

  constructor(
    connection: WarrenConnection,
    private readonly logger: Logger,
  ) {
    this.channel = connection.createChannel(
      'publish',
      { name: 'rpc-replies', confirm: true, setup: () => (this.refusal = undefined) },
      (err) => (this.refusal = err),
    );
    connection.onEvent('publish', 'disconnect', ({ err }) => {
      this.losses++;
      this.lastLossInternal = isBrokerInternalError(err);
    });
  }

  send(replyTo: string, content: Buffer, properties: Options.Publish): Promise<ReplyOutcome> {
    // The common case, without an async step of its own: no destination known dead, no reply being sent again.
    if (this.lane === undefined && this.dead.size === 0) return this.sendFirst(replyTo, content, properties);
    return this.sendAfterLane(replyTo, content, properties);
  }

  private async sendAfterLane(replyTo: string, content: Buffer, properties: Options.Publish): Promise<ReplyOutcome> {
    if (this.dead.has(destinationOf(replyTo))) return { sent: false, reason: 'dead-destination' };
    while (this.lane) await this.lane;
    return this.sendFirst(replyTo, content, properties);
  }

  /** A reply's first attempt: straight to the live channel when nothing waits before it. */
  private sendFirst(replyTo: string, content: Buffer, properties: Options.Publish): Promise<ReplyOutcome> {
    this.inFlight++;
    const sent =
      publishConfirmed(this.channel, '', replyTo, content, properties) ??
      this.channel.publish('', replyTo, content, properties);
    return sent.then(
      () => {
        if (--this.inFlight === 0) this.idle?.();
        return SENT;
      },
      (err: unknown) => {
        if (--this.inFlight === 0) this.idle?.();
        return this.afterFailure(err, { destination: destinationOf(replyTo), replyTo, content, properties }, 1);
      },
    );
  }

  private afterFailure(err: unknown, reply: Reply, attempt: number): Promise<ReplyOutcome> {
    if (isWrapperClosedOnPublish(err)) return Promise.resolve({ sent: false, reason: 'closed' });
    if (!isChannelClosedOnPublish(err)) return Promise.reject(err as Error);
    const maxSize = this.refusal && maxMessageSizeNamedBy(this.refusal);
    if (maxSize !== undefined && reply.content.length > maxSize) {
      return Promise.resolve({ sent: false, reason: 'too-large', size: reply.content.length, maxSize });
    }
    if (attempt >= MAX_REPLY_ATTEMPTS) return Promise.resolve({ sent: false, reason: 'attempts-exhausted' });
    return new Promise<ReplyOutcome>((resolve, reject) => {
      this.retries.push({ reply, attempt: attempt + 1, resolve, reject });
      this.lane ??= this.drain();
    });
  }

  /** Sends the replies waiting to be sent again, each alone: after the first attempts in flight settle. */
  private async drain(): Promise<void> {
    try {
      for (let retry = this.retries.shift(); retry; retry = this.retries.shift()) {
        if (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
        this.idle = undefined;
        // A retry that fails again joins the end of the lane: its outcome is not waited for here.
        const { reply, attempt, resolve, reject } = retry;
        (await this.sendAgain(reply, attempt)).outcome.then(resolve, reject);
      }
    } finally {
      this.lane = undefined;
    }
  }

  /**
   * One more attempt at a reply. Resolves once that attempt is over, with the promise of its final
   * outcome (wrapped: a promise resolved with a promise would wait for it).
   */
  private async sendAgain(reply: Reply, attempt: number): Promise<{ outcome: Promise<ReplyOutcome> }> {
    const settled = (outcome: ReplyOutcome) => ({ outcome: Promise.resolve(outcome) });
    if (this.dead.has(reply.destination)) return settled({ sent: false, reason: 'dead-destination' });
    const losses = this.losses;
    try {
      await (publishConfirmed(this.channel, '', reply.replyTo, reply.content, reply.properties) ??
        this.channel.publish('', reply.replyTo, reply.content, reply.properties));
      return settled({ sent: true });
    } catch (err) {
      // Alone on the connection, and the broker failed internally: this reply is what it cannot take.
      if (isChannelClosedOnPublish(err) && (await this.lostInternallySince(losses))) {
        this.markDead(reply.destination, reply.replyTo);
        return settled({ sent: false, reason: 'dead-destination' });
      }
      return { outcome: this.afterFailure(err, reply, attempt) };
    }
  }

  /**
   * Whether the connection was lost since `losses` were counted, the last time with 541: amqplib
   * fails the channel's unconfirmed publishes before the connection manager reports the loss.
   */
  private async lostInternallySince(losses: number): Promise<boolean> {
    await new Promise((resolve) => setImmediate(resolve));
    return this.losses > losses && this.lastLossInternal;
  }

  private markDead(destination: string, replyTo: string): void {
    if (this.dead.size >= MAX_DEAD_DESTINATIONS) this.dead.delete(this.dead.values().next().value as string);
    this.dead.add(destination);
    this.logger.warn(
      `an RPC reply to ${redactCredentials(replyTo)} makes the broker close the connection (INTERNAL_ERROR: ` +
        `RabbitMQ 3.10 does this for a direct reply-to whose node is down); its caller is gone, replies to it are dropped`,
    );
  }
}

/**
 * The channel (direct reply-to) or queue a reply goes to: `amq.rabbitmq.reply-to.<channel>.<key>`
 * names the calling channel before its last dot.
 */
function destinationOf(replyTo: string): string {
  if (!replyTo.startsWith(DIRECT_REPLY_TO_PREFIX)) return replyTo;
  const lastDot = replyTo.lastIndexOf('.');
  return lastDot > DIRECT_REPLY_TO_PREFIX.length ? replyTo.slice(0, lastDot) : replyTo;
}

import type { Channel, Message } from 'amqplib';

/** One channel's deliveries, as far as acking them together goes. */
interface ChannelRuns {
  channel: Channel;
  /** Delivery tags received and neither handled nor settled yet, in the order received: ascending. */
  open: Set<number>;
  /** Handled deliveries whose ack is due in this tick. */
  due: Message[];
}

/**
 * Acks the handled deliveries of a consumer's channel together: at the end of the tick in which
 * they were handled, every handled delivery below the lowest tag still open (being handled, or
 * with its failure policy) goes in one `multiple` ack of the highest of them; those above it are
 * acked one by one in the same tick. A `multiple` ack settles every unacked delivery of the
 * channel up to its tag, so it is sent only where nothing below the tag is still open: a delivery
 * its failure policy has not settled is never acked by it. Under load, deliveries arrive, and
 * their handlers finish, many in a tick: one ack frame instead of one each, for the client to
 * encode and the broker to process. Nothing waits past the current tick (the frames leave in
 * that tick's write either way, see `coalesceWrites`).
 */
export class AckRuns {
  private readonly channels = new WeakMap<Channel, ChannelRuns>();
  /** The channel of the last delivery: a consumer has one at a time, so this is nearly always it. */
  private last?: ChannelRuns;
  /** Channels with acks due, flushed at the end of the tick. */
  private readonly pending: ChannelRuns[] = [];
  private scheduled = false;

  /** A delivery came: open until handled or settled. */
  received(channel: Channel, tag: number): void {
    this.runsOf(channel).open.add(tag);
  }

  /** Handled, and settled as far as the handler is concerned: its ack goes out in this tick. */
  handled(channel: Channel, message: Message): void {
    const runs = this.runsOf(channel);
    runs.open.delete(message.fields.deliveryTag);
    if (runs.due.length === 0) this.pending.push(runs);
    runs.due.push(message);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flush);
    }
  }

  /** Settled some other way (its failure policy, or the handler itself): no longer in a run's way. */
  settled(channel: Channel, tag: number): void {
    this.channels.get(channel)?.open.delete(tag);
  }

  /** Sends every ack due now (a consumer that is about to close its channel calls it first). */
  readonly flush = (): void => {
    this.scheduled = false;
    for (const runs of this.pending) ackDue(runs);
    this.pending.length = 0;
  };

  private runsOf(channel: Channel): ChannelRuns {
    if (this.last?.channel === channel) return this.last;
    let runs = this.channels.get(channel);
    if (runs === undefined) this.channels.set(channel, (runs = { channel, open: new Set(), due: [] }));
    return (this.last = runs);
  }
}

function ackDue({ channel, open, due }: ChannelRuns): void {
  const lowestOpen = open.size === 0 ? Infinity : (open.values().next().value as number);
  let highest: Message | undefined;
  let below = 0;
  try {
    for (const message of due) {
      const tag = message.fields.deliveryTag;
      if (tag > lowestOpen) channel.ack(message);
      else {
        below++;
        if (highest === undefined || tag > highest.fields.deliveryTag) highest = message;
      }
    }
    if (highest !== undefined) channel.ack(highest, below > 1);
  } catch {
    // The channel died with the deliveries on it: the broker requeues them by itself.
  } finally {
    due.length = 0;
  }
}

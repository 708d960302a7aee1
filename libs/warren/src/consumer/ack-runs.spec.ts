import type { Channel, Message } from 'amqplib';
import { AckRuns } from './ack-runs.js';

/** A channel that records the acks sent on it: "3" for one delivery, "≤5" for a multiple ack. */
function recordingChannel(): { channel: Channel; acks: string[] } {
  const acks: string[] = [];
  const channel = {
    ack: (message: Message, allUpTo?: boolean) => acks.push(`${allUpTo ? '≤' : ''}${message.fields.deliveryTag}`),
  } as unknown as Channel;
  return { channel, acks };
}

const delivery = (tag: number) => ({ fields: { deliveryTag: tag } }) as Message;
const endOfTick = () => new Promise<void>((resolve) => process.nextTick(resolve));

describe('AckRuns', () => {
  it('acks deliveries handled in one tick with one multiple ack of the highest, at the end of that tick', async () => {
    const runs = new AckRuns();
    const { channel, acks } = recordingChannel();
    for (const tag of [1, 2, 3]) runs.received(channel, tag);
    // Handled out of order, as concurrent handlers finish.
    for (const tag of [2, 3, 1]) runs.handled(channel, delivery(tag));
    expect(acks).toEqual([]);
    await endOfTick();
    expect(acks).toEqual(['≤3']);
  });

  it('never acks past a delivery still open: those above it are acked one by one in the same tick', async () => {
    const runs = new AckRuns();
    const { channel, acks } = recordingChannel();
    for (const tag of [1, 2, 3, 4]) runs.received(channel, tag);
    // 2 is with its handler, or its failure policy.
    for (const tag of [1, 3, 4]) runs.handled(channel, delivery(tag));
    await endOfTick();
    expect(acks).toEqual(['3', '4', '1']);
    // Once its failure policy has settled 2, later runs go past it.
    runs.settled(channel, 2);
    for (const tag of [5, 6]) runs.received(channel, tag);
    for (const tag of [5, 6]) runs.handled(channel, delivery(tag));
    await endOfTick();
    expect(acks.slice(3)).toEqual(['≤6']);
  });

  it('a single handled delivery gets a plain ack', async () => {
    const runs = new AckRuns();
    const { channel, acks } = recordingChannel();
    runs.received(channel, 1);
    runs.handled(channel, delivery(1));
    await endOfTick();
    expect(acks).toEqual(['1']);
  });

  it('keeps channels apart, and flush() sends what is due at once', () => {
    const runs = new AckRuns();
    const a = recordingChannel();
    const b = recordingChannel();
    runs.received(a.channel, 1);
    runs.received(b.channel, 1);
    runs.received(a.channel, 2);
    runs.handled(a.channel, delivery(1));
    runs.handled(b.channel, delivery(1));
    runs.handled(a.channel, delivery(2));
    runs.flush();
    expect(a.acks).toEqual(['≤2']);
    expect(b.acks).toEqual(['1']);
  });

  it('a channel that died with deliveries on it does not stop the acks of another', () => {
    const runs = new AckRuns();
    const dead = {
      ack: () => {
        throw new Error('Channel closed');
      },
    } as unknown as Channel;
    const live = recordingChannel();
    runs.received(dead, 1);
    runs.received(live.channel, 1);
    runs.handled(dead, delivery(1));
    runs.handled(live.channel, delivery(1));
    expect(() => runs.flush()).not.toThrow();
    expect(live.acks).toEqual(['1']);
  });
});

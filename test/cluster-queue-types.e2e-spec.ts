import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Consume, Publisher, TopologyError } from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { deleteTopology, management, unique, waitUntil } from './support/broker.js';

// Queue types and typed queue options, declared by Warren and read back from RabbitMQ itself.

const JOBS = unique('e2e.types-jobs');
const CAPPED = unique('e2e.types-capped');
const URGENT = unique('e2e.types-urgent');
const EVENTS = unique('e2e.types-events');
const TEMP = unique('e2e.types-temp');
const SAC = unique('e2e.types-sac');

interface BrokerQueue {
  type: string;
  durable: boolean;
  arguments: Record<string, unknown>;
}

function brokerQueue(name: string): Promise<BrokerQueue> {
  return management<BrokerQueue>(`/api/queues/%2F/${encodeURIComponent(name)}`);
}

@Injectable()
class Handlers {
  @Consume(JOBS, { deliveryLimit: 3, failure: 'requeue' })
  onJob() {}

  @Consume(CAPPED, {
    queueType: 'quorum',
    maxLength: 2,
    overflow: 'reject-publish',
    messageTtl: 60_000,
    singleActiveConsumer: true,
    failure: 'drop',
  })
  onCapped() {}

  @Consume(URGENT, { queueType: 'classic', maxPriority: 10, failure: 'drop' })
  onUrgent() {}

  @Consume(EVENTS, { queueType: 'stream', maxAge: '1D', maxSegmentSize: 1_000_000, maxLengthBytes: 50_000_000 })
  onEvent() {}

  @Consume(TEMP, { durable: false, failure: 'drop' })
  onTemp() {}
}

describe('queue types and typed queue options on RabbitMQ', () => {
  let app: INestApplicationContext;

  beforeAll(async () => {
    app = await bootApp({ providers: [Handlers] }, { queues: { type: 'quorum' } });
  });

  afterAll(async () => {
    await app?.close();
    await deleteTopology({ queues: [JOBS, `${JOBS}.dlq`, CAPPED, URGENT, EVENTS, `${EVENTS}.dlq`, TEMP, SAC] });
  });

  it("declares named durable queues with the module's default type, with their dead-letter queues; temporary ones stay classic", async () => {
    expect(await brokerQueue(JOBS)).toMatchObject({
      type: 'quorum',
      arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 3, 'x-dead-letter-routing-key': `${JOBS}.dlq` },
    });
    expect(await brokerQueue(`${JOBS}.dlq`)).toMatchObject({ type: 'quorum' });
    expect(await brokerQueue(TEMP)).toMatchObject({ type: 'classic', durable: false });
  });

  it('passes every typed option to RabbitMQ under its queue argument, which the broker accepts for the type', async () => {
    expect((await brokerQueue(CAPPED)).arguments).toEqual({
      'x-queue-type': 'quorum',
      'x-max-length': 2,
      'x-overflow': 'reject-publish',
      'x-message-ttl': 60_000,
      'x-single-active-consumer': true,
    });
    expect(await brokerQueue(URGENT)).toMatchObject({
      type: 'classic',
      arguments: { 'x-queue-type': 'classic', 'x-max-priority': 10 },
    });
    // A stream's failures go to its dead-letter queue: a retry would append the message again.
    expect(await brokerQueue(EVENTS)).toMatchObject({
      type: 'stream',
      arguments: {
        'x-queue-type': 'stream',
        'x-max-age': '1D',
        'x-stream-max-segment-size-bytes': 1_000_000,
        'x-max-length-bytes': 50_000_000,
      },
    });
    expect(await brokerQueue(`${EVENTS}.dlq`)).toMatchObject({ type: 'quorum' });
  });

  it('refuses at boot what RabbitMQ would refuse for the type the module gives, naming the method', async () => {
    @Injectable()
    class Prioritised {
      @Consume(unique('e2e.types-refused'), { maxPriority: 5 })
      onMessage() {}
    }
    await expect(bootApp({ providers: [Prioritised] }, { queues: { type: 'quorum' } })).rejects.toThrow(
      new TopologyError('Prioritised.onMessage: maxPriority needs queueType "classic"'),
    );
  });
});

describe('a single active consumer on a quorum queue, across two app instances', () => {
  @Injectable()
  class Worker {
    readonly seen: number[] = [];
    @Consume(SAC, { queueType: 'quorum', singleActiveConsumer: true, prefetch: 1 })
    onMessage(payload: { n: number }) {
      this.seen.push(payload.n);
    }
  }

  let first: INestApplicationContext;
  let second: INestApplicationContext;

  afterAll(async () => {
    await first?.close();
    await second?.close();
    await deleteTopology({ queues: [SAC, `${SAC}.dlq`] });
  });

  it('delivers to one instance only; when it closes, the other takes over, in order', async () => {
    first = await bootApp({ providers: [Worker] });
    second = await bootApp({ providers: [Worker] });
    const publisher = first.get(Publisher);
    for (let n = 0; n < 20; n++) await publisher.sendToQueue(SAC, { n });
    const [a, b] = [first.get(Worker), second.get(Worker)];
    await waitUntil('the first 20 messages', () => a.seen.length + b.seen.length === 20);
    // The first instance to consume is the active one; the other receives nothing.
    expect(a.seen).toEqual([...Array(20).keys()]);
    expect(b.seen).toEqual([]);

    const sender = second.get(Publisher);
    await first.close();
    for (let n = 20; n < 40; n++) await sender.sendToQueue(SAC, { n });
    await waitUntil('the other instance to take over', () => b.seen.length === 20);
    expect(b.seen).toEqual([...Array(20).keys()].map((n) => n + 20));
  });
});

import { Injectable, type INestApplicationContext } from '@nestjs/common';
import amqplib from 'amqplib';
import { Consume, ConsumerRegistry, Publisher, Subscribe, WarrenHealthIndicator } from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, management, unique, waitUntil } from './support/broker.js';
import { logged } from './support/logs.js';

// A consumer the broker cancels while the connection stays up (its queue deleted under it) comes
// back by itself: the queue and its bindings are declared again and consumed again. Every wait is
// bounded.

const X = unique('e2e.cancel-x');
const WORK = unique('e2e.cancel-work');
const LOCKED = unique('e2e.cancel-locked');

@Injectable()
class Handlers {
  work: string[] = [];
  news: string[] = [];
  locked: string[] = [];
  @Consume(WORK)
  onWork(payload: { id: string }) {
    this.work.push(payload.id);
  }
  // Not exclusive: RabbitMQ lets no other connection delete an exclusive queue, not even an
  // operator's, so only a shared server-named queue can be deleted under its consumer.
  @Subscribe(X, 'news.*', { exclusive: false })
  onNews(payload: { id: string }) {
    this.news.push(payload.id);
  }
}

/** Deletes a queue the way an operator does (`rabbitmqctl delete_queue`, the management UI). */
async function deleteQueueAsOperator(queue: string): Promise<void> {
  await management(`/api/queues/%2F/${encodeURIComponent(queue)}`, { method: 'DELETE' });
}

/** The queue's consumer count as the broker has it now (the management API's figures lag seconds). */
async function consumersOf(queue: string): Promise<number | undefined> {
  const connection = await amqplib.connect(brokerUrl());
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    // A missing queue closes the channel: undefined.
    return (await channel.checkQueue(queue).catch(() => undefined))?.consumerCount;
  } finally {
    await connection.close();
  }
}

function liveness(app: INestApplicationContext) {
  return app.get(WarrenHealthIndicator).check().rabbitmq;
}

describe('a consumer the broker cancels (its queue deleted under it)', () => {
  let app: INestApplicationContext;

  beforeAll(async () => {
    app = await bootApp({ providers: [Handlers] }, { resubscribeDelaysMs: [100, 300] });
  });

  afterAll(async () => {
    await app?.close();
    await deleteTopology({ exchanges: [X], queues: [WORK, `${WORK}.dlq`, LOCKED] });
  });

  it('declares its named queue again and consumes it: messages published afterwards are handled', async () => {
    const handlers = app.get(Handlers);
    await deleteQueueAsOperator(WORK);
    await waitUntil('the queue to be declared again with its consumer', async () => (await consumersOf(WORK)) === 1);
    expect(liveness(app)).toMatchObject({ status: 'up', consumers: { inactive: [] } });

    await app.get(Publisher).sendToQueue(WORK, { id: 'after-delete' });
    await waitUntil('the message published after the delete', () => handlers.work.includes('after-delete'));
    expect(logged('warn')).toEqual([
      expect.stringContaining(`Handlers.onWork: the broker cancelled the consumer of queue "${WORK}"`),
    ]);
    expect(logged('log')).toContain(`Handlers.onWork: consuming queue "${WORK}" again`);
  });

  it('declares a deleted server-named queue under a new name, bound again to its exchange', async () => {
    const handlers = app.get(Handlers);
    const registry = app.get(ConsumerRegistry);
    const before = registry.list().find((c) => c.label === 'Handlers.onNews')!.queue;
    await deleteQueueAsOperator(before);
    let after = before;
    await waitUntil('a new server-named queue', async () => {
      after = registry.list().find((c) => c.label === 'Handlers.onNews')!.queue;
      return after !== before && (await consumersOf(after)) === 1;
    });
    expect(after).toMatch(/^amq\.gen-/);

    await app.get(Publisher).publish(X, 'news.today', { id: 'after-delete' });
    await waitUntil('the event published after the delete', () => handlers.news.includes('after-delete'));
  });

  it('keeps trying while the queue cannot be declared, shows on the health indicator, and comes back once it can', async () => {
    const registry = app.get(ConsumerRegistry);
    const got: string[] = [];
    await registry.consume(LOCKED, (p: { id: string }) => void got.push(p.id), { label: 'locked' });
    // Another connection takes the name with an exclusive queue between the delete and the first
    // attempt: RabbitMQ refuses every declaration of it (RESOURCE_LOCKED) while that connection lives.
    const other = await amqplib.connect(brokerUrl());
    try {
      const channel = await other.createChannel();
      await channel.deleteQueue(LOCKED);
      await channel.assertQueue(LOCKED, { exclusive: true });
      await waitUntil('two refused attempts', () => logged('warn').filter((l) => l.includes('again yet')).length >= 2);
      expect(liveness(app)).toMatchObject({ status: 'down', consumers: { inactive: ['locked'] } });
      expect(logged('warn')).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^locked: cannot declare queue "${LOCKED}" again yet: .*RESOURCE_LOCKED.*; next attempt in 300 ms$`,
          ),
        ),
      );
    } finally {
      await other.close();
    }
    await waitUntil('the consumer to come back', () => liveness(app).status === 'up');
    expect(liveness(app).consumers.inactive).toEqual([]);
    await app.get(Publisher).sendToQueue(LOCKED, { id: 'after-unlock' });
    await waitUntil('the message published once the queue could be declared', () => got.includes('after-unlock'));
  });
});

import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Consume, Publisher, TopologyError, WarrenDecoratorError } from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { deleteTopology, unique, waitUntil } from './support/broker.js';

const ORDERED = unique('e2e.concurrency-1');
const LIMITED = unique('e2e.concurrency-4');
const COUNT = 200;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Handlers that take a varying time: without a limit, their completions would come out of order. */
@Injectable()
class Workers {
  ordered: number[] = [];
  limited = 0;
  running = 0;
  maxRunning = 0;

  @Consume(ORDERED, { prefetch: 20, concurrency: 1, failure: 'drop' })
  async inOrder({ n }: { n: number }) {
    await pause(n % 3);
    this.ordered.push(n);
  }

  @Consume(LIMITED, { prefetch: 50, concurrency: 4, failure: 'drop' })
  async atMostFour() {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    await pause(5);
    this.running--;
    this.limited++;
  }
}

let app: INestApplicationContext;

beforeAll(async () => {
  app = await bootApp({ providers: [Workers] });
});

afterAll(async () => {
  await app?.close();
  await deleteTopology({ queues: [ORDERED, LIMITED] });
});

describe('concurrency apart from prefetch', () => {
  it('concurrency 1 handles the queue in order, though 20 deliveries are prefetched', async () => {
    const publisher = app.get(Publisher);
    await Promise.all(Array.from({ length: COUNT }, (_, n) => publisher.sendToQueue(ORDERED, { n })));
    const workers = app.get(Workers);
    await waitUntil('every message', () => workers.ordered.length === COUNT);
    expect(workers.ordered).toEqual(Array.from({ length: COUNT }, (_, n) => n));
  });

  it('concurrency 4 with prefetch 50 never runs more than 4 handlers at once', async () => {
    const publisher = app.get(Publisher);
    await Promise.all(Array.from({ length: COUNT }, (_, n) => publisher.sendToQueue(LIMITED, { n })));
    const workers = app.get(Workers);
    await waitUntil('every message', () => workers.limited === COUNT);
    // Four at once, not fewer: the limit is a limit, not a serialisation.
    expect(workers.maxRunning).toBe(4);
  });

  it("takes the module's concurrency where a handler sets none", async () => {
    const queue = unique('e2e.concurrency-module');
    const done: number[] = [];
    @Injectable()
    class Unset {
      @Consume(queue, { prefetch: 20, failure: 'drop' })
      async on({ n }: { n: number }) {
        await pause(n % 3);
        done.push(n);
      }
    }
    const ordered = await bootApp({ providers: [Unset] }, { concurrency: 1 });
    try {
      const publisher = ordered.get(Publisher);
      await Promise.all(Array.from({ length: 60 }, (_, n) => publisher.sendToQueue(queue, { n })));
      await waitUntil('every message', () => done.length === 60);
      expect(done).toEqual(Array.from({ length: 60 }, (_, n) => n));
    } finally {
      await ordered.close();
      await deleteTopology({ queues: [queue, `${queue}.dlq`] });
    }
  });

  it('refuses a concurrency that is not a whole number of at least 1, naming the handler', async () => {
    expect(() => Consume('q', { concurrency: 0 })({}, 'on', {})).toThrow(
      new WarrenDecoratorError('@Consume() on Object.on: concurrency must be a whole number of at least 1, got 0'),
    );
    // The module's default is checked on the consumers it applies to.
    @Injectable()
    class Plain {
      @Consume(unique('e2e.concurrency-plain'), { failure: 'drop' })
      on() {}
    }
    await expect(bootApp({ providers: [Plain] }, { concurrency: 1.5 })).rejects.toThrow(
      new TopologyError('Plain.on: concurrency must be a whole number of at least 1, got 1.5'),
    );
  });
});

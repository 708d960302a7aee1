import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { jest } from '@jest/globals';
import { Test } from '@nestjs/testing';
import { Consume, FAILURE_HEADERS, Publisher, WARREN_MODULE_OPTIONS, WarrenModule } from 'nestjs-warren';
import { memoryBroker } from 'nestjs-warren/memory';
import { recordHandled } from 'nestjs-warren/testing';
import { unique } from './support/broker.js';

// The testing kit on `memory://`, used as docs/testing.md shows it: the app's own module with its
// Warren options overridden, a dead letter read without a consumer, fake timers driving retries.

const BROKER = unique('kit');
const JOBS = 'kit.jobs';

@Injectable()
class Jobs {
  attempts = 0;

  @Consume(JOBS, { failure: { mode: 'retry', retryDelays: [60_000, 600_000] } })
  run(job: { id: number }) {
    this.attempts++;
    throw new Error(`job ${job.id} cannot run`);
  }
}

/** The app's module as it ships: RabbitMQ from the environment. */
const AppModule = {
  module: class AppModule {},
  imports: [WarrenModule.forRoot({ url: process.env.ORDERS_RABBITMQ_URL ?? 'amqp://unused.invalid' })],
  providers: [Jobs],
};

async function bootOnMemory(): Promise<INestApplicationContext> {
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(WARREN_MODULE_OPTIONS)
    .useValue({ url: `memory://${BROKER}` })
    .compile();
  moduleRef.useLogger(['error']);
  return moduleRef.init();
}

describe('the testing kit on memory://', () => {
  let app: INestApplicationContext | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
    jest.useRealTimers();
    memoryBroker(BROKER).reset();
  });

  it("runs the app's own module on memory:// by overriding WARREN_MODULE_OPTIONS", async () => {
    app = await bootOnMemory();
    expect(memoryBroker(BROKER).queueNames()).toContain(JOBS);
  });

  it('fails at once on a recordHandled() label that names no handler, listing the handlers there are', async () => {
    app = await bootOnMemory();
    expect(() => recordHandled(app!, 'Jobs.runn')).toThrow(
      new Error(
        'recordHandled(): no handler "Jobs.runn" on the connection "default"; its handlers are Jobs.run. ' +
          'Labels are Class.method, or the label of a runtime subscription (made before recording)',
      ),
    );
  });

  it('peeks at a dead letter with its headers, no consumer needed, and leaves it in the queue', async () => {
    // Fake timers drive the retry delays (a minute, then ten): memory:// queues expire messages on the process's timers.
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    app = await bootOnMemory();
    const jobs = app.get(Jobs);
    const handled = recordHandled(app, 'Jobs.run');
    await app.get(Publisher).sendToQueue(JOBS, { id: 7 }, { headers: { 'x-tenant': 'acme' } });
    // The first attempt, then one after each retry delay.
    for (const [attempt, delay] of [
      [1, 0],
      [2, 60_000],
      [3, 600_000],
    ]) {
      await jest.advanceTimersByTimeAsync(delay);
      await handled.waitForCount(attempt);
    }
    expect(jobs.attempts).toBe(3);

    const broker = memoryBroker(BROKER);
    const [dead, ...more] = broker.peek(`${JOBS}.dlq`);
    expect(more).toEqual([]);
    expect(dead.payload).toEqual({ id: 7 });
    expect(dead.headers).toMatchObject({
      'x-tenant': 'acme',
      [FAILURE_HEADERS.errorMessage]: 'job 7 cannot run',
      [FAILURE_HEADERS.queue]: JOBS,
    });
    // Peeking takes nothing.
    expect(broker.queue(`${JOBS}.dlq`)?.messageCount).toBe(1);
    expect(broker.peek(`${JOBS}.dlq`)).toHaveLength(1);
  });

  it('refuses to peek at a queue that does not exist, naming it', async () => {
    app = await bootOnMemory();
    expect(() => memoryBroker(BROKER).peek('kit.nope')).toThrow(
      `memoryBroker("${BROKER}").peek(): there is no queue "kit.nope"; the queues are`,
    );
  });
});

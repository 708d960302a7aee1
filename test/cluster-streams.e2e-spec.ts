import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Consume, InMemoryStreamOffsetStore, Publisher, type StreamOffsetStore, TopologyError } from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { deleteTopology, unique, waitUntil } from './support/broker.js';

// Streams on RabbitMQ: read from an offset, by several apps independently, resumed after a restart
// from the offset an offset store kept. Every wait is bounded.

const STREAM = unique('e2e.stream-events');
const LATE = unique('e2e.stream-late');

@Injectable()
class Reader {
  readonly seen: number[] = [];
  @Consume(STREAM, { queueType: 'stream', offset: 'first', prefetch: 10 })
  onEvent(payload: { n: number }) {
    this.seen.push(payload.n);
  }
}

/** A store that outlives the app using it, as a database table would. */
class DurableStore implements StreamOffsetStore {
  readonly offsets = new Map<string, number>();
  async load(consumer: string, stream: string) {
    return this.offsets.get(`${consumer}/${stream}`);
  }
  async save(consumer: string, stream: string, offset: number) {
    this.offsets.set(`${consumer}/${stream}`, offset);
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('a stream read by two apps', () => {
  const apps: INestApplicationContext[] = [];
  const boot = async (offsetStore: StreamOffsetStore) => {
    const app = await bootApp({ providers: [Reader] }, { streams: { offsetStore } });
    apps.push(app);
    return app;
  };

  afterAll(async () => {
    for (const app of apps) await app.close();
    await deleteTopology({ queues: [STREAM, `${STREAM}.dlq`, LATE, `${LATE}.dlq`] });
  });

  it('from first: both see every message in order; one restarted mid-way resumes from its stored offset', async () => {
    const storeA = new DurableStore();
    let a = await boot(storeA);
    const b = await boot(new InMemoryStreamOffsetStore());
    const publisher = b.get(Publisher);
    // Written before either reads: reading from `first` is a backfill.
    for (const n of range(0, 30)) await publisher.sendToQueue(STREAM, { n });
    await waitUntil(
      'both apps to read the first 30',
      () => a.get(Reader).seen.length === 30 && b.get(Reader).seen.length === 30,
    );
    expect(a.get(Reader).seen).toEqual(range(0, 30));
    await waitUntil('app A to store the offset of its 30th message', () => storeA.offsets.size === 1);

    await a.close();
    for (const n of range(30, 60)) await publisher.sendToQueue(STREAM, { n });
    a = await boot(storeA);
    await waitUntil('app A to read on after its restart', () => a.get(Reader).seen.length >= 30);
    await waitUntil('app B to read all 60', () => b.get(Reader).seen.length === 60);
    // Not from `first` again: from right after the offset it had stored.
    expect(a.get(Reader).seen).toEqual(range(30, 60));
    expect(b.get(Reader).seen).toEqual(range(0, 60));
    // A stream is not consumed away: both read the same messages.
    expect(storeA.offsets.get(`Reader.onEvent/${STREAM}`)).toBeGreaterThanOrEqual(59);
  });

  it('from next: sees only what is written after it starts', async () => {
    @Injectable()
    class LateReader {
      readonly seen: number[] = [];
      @Consume(LATE, { queueType: 'stream', offset: 'next' })
      onEvent(payload: { n: number }) {
        this.seen.push(payload.n);
      }
    }
    @Injectable()
    class Declarer {
      @Consume(LATE, { queueType: 'stream', offset: 'first' })
      onEvent() {}
    }
    // Declares the stream and writes to it before the late reader exists.
    const writer = await bootApp({ providers: [Declarer] });
    apps.push(writer);
    for (const n of range(0, 5)) await writer.get(Publisher).sendToQueue(LATE, { n });
    const late = await bootApp({ providers: [LateReader] });
    apps.push(late);
    for (const n of range(5, 10)) await writer.get(Publisher).sendToQueue(LATE, { n });
    await waitUntil(
      'the late reader to see the messages written after it started',
      () => late.get(LateReader).seen.length === 5,
    );
    expect(late.get(LateReader).seen).toEqual(range(5, 10));
  });

  it('is refused by the in-memory broker with a clear boot error naming the method', async () => {
    await expect(bootApp({ providers: [Reader] }, { url: `memory://${unique('streams')}` })).rejects.toThrow(
      TopologyError,
    );
    await expect(bootApp({ providers: [Reader] }, { url: `memory://${unique('streams')}` })).rejects.toThrow(
      /^Reader\.onEvent: the broker refused the declaration of queue ".*": .*the in-memory broker has no streams/,
    );
  });
});

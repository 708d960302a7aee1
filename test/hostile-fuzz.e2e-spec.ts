import { Injectable, type INestApplicationContext } from '@nestjs/common';
import amqplib from 'amqplib';
import { randomBytes } from 'node:crypto';
import { Consume, WarrenConnection } from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';
import { deepTable, field, RawAmqpPublisher, rawProperties, type RawProperties, table } from './support/raw-amqp.js';

// Fuzzes the inbound path: random bodies, content types, header tables of random shape and depth
// and property values at and past AMQP's limits, sent raw to the real broker. Bounded in count and
// time. Every message the broker takes must end handled or dead-lettered, on a connection that
// never drops, with no unhandled rejection and a bounded heap.
const FUZZ = unique('e2e.fuzz');
const COUNT = 300;

@Injectable()
class Target {
  handled = 0;
  failed = 0;

  @Consume(FUZZ, { failure: 'dead-letter', prefetch: 50 })
  onMessage(payload: unknown) {
    // Some handlers fail: those messages must reach the dead-letter queue too.
    if (typeof payload === 'string' && payload.length % 3 === 0) {
      this.failed++;
      throw new Error('this one fails');
    }
    this.handled++;
  }
}

/** Deterministic, so a failing run replays. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('fuzzing the inbound path', () => {
  let app: INestApplicationContext;
  let raw: RawAmqpPublisher;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    app = await bootApp({ providers: [Target] });
    raw = await RawAmqpPublisher.connect(brokerUrl());
  });

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await raw?.close();
    await app?.close();
    await deleteTopology({ queues: [FUZZ, `${FUZZ}.dlq`] });
  });

  it(`${COUNT} random messages: each handled or dead-lettered, the connection kept, the heap bounded`, async () => {
    const next = random(2026);
    const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)];
    const int = (max: number) => Math.floor(next() * max);
    const text = (max: number) => randomBytes(int(max)).toString('base64').slice(0, max);
    // Values the broker itself refuses (closing the sender's channel or connection), now and then.
    const rarely = <T>(usual: T[], refused: T[]): T => (next() < 0.04 ? pick(refused) : pick(usual));
    const shortText = () => pick(['', 'x', text(60), 'é'.repeat(127), 'y'.repeat(255)]);

    const value = (depth: number): Buffer => {
      switch (int(depth > 6 ? 6 : 9)) {
        case 0:
          return field.string(text(300));
        case 1:
          return field.int(int(2 ** 31) - 2 ** 30);
        case 2:
          return field.long(BigInt(int(2 ** 50)) * pick([1n, -1n, 8191n]));
        case 3:
          return field.double(pick([0.5, -1e308, 1e-300, NaN, Infinity, -Infinity]));
        case 4:
          return field.bool(next() < 0.5);
        case 5:
          return pick([field.void(), field.bytes(randomBytes(int(64))), field.timestamp(BigInt(int(2 ** 40)))]);
        case 6:
          return field.array(Array.from({ length: int(4) }, () => value(depth + 1)));
        default:
          return field.table(Array.from({ length: int(4) }, (_, i) => [`k${i}`, value(depth + 1)]));
      }
    };
    const headers = (): Buffer | undefined => {
      const shape = int(10);
      if (shape === 0) return undefined;
      if (shape === 1) return deepTable('deep', pick([63, 64, 65, 200, 5000, 10_000]));
      const entries: [string, Buffer][] = Array.from({ length: int(6) }, (_, i) => [
        pick([`h${i}`, 'x-death', 'traceparent', '__proto__', 'k'.repeat(255), 'x-warren-attempt']),
        value(0),
      ]);
      return table(entries);
    };
    const body = (): Buffer =>
      pick([
        () => Buffer.from(JSON.stringify({ n: int(1000), s: text(50) })),
        () => Buffer.from('{"not json'),
        () => Buffer.from('{"__proto__":{"x":1},"constructor":{"prototype":{"y":2}}}'),
        () => randomBytes(int(2000)),
        () => Buffer.alloc(0),
        () => Buffer.from(text(200)),
        () => Buffer.alloc(100_000 + int(100_000), 0x7b),
      ])();
    const properties = (): RawProperties => ({
      contentType: pick([
        undefined,
        'application/json',
        'application/json; charset=utf-8',
        'text/plain',
        'application/octet-stream',
        'application/vnd.x+json',
        '',
        shortText(),
      ]),
      contentEncoding: pick([undefined, 'gzip', shortText()]),
      headers: headers(),
      deliveryMode: rarely([undefined, 1, 2], [0, 255]),
      priority: pick([undefined, 0, 9, 255]),
      correlationId: pick([undefined, shortText()]),
      replyTo: pick([undefined, shortText()]),
      expiration: rarely([undefined, '60000', '4294967295'], ['-1', 'abc', '1.5', '99999999999999999999']),
      messageId: pick([undefined, shortText()]),
      timestamp: rarely([undefined, 0n, 2n ** 62n], [2n ** 63n, 2n ** 64n - 1n]),
      type: pick([undefined, shortText()]),
      appId: pick([undefined, shortText()]),
    });

    const warren = app.get(WarrenConnection);
    const generation = warren.connectionGeneration('consume');
    const heapBefore = process.memoryUsage().heapUsed;
    let accepted = 0;
    for (let i = 0; i < COUNT; i++) {
      const props = properties();
      // The broker refuses some: an invalid expiration closes the sender's channel, a property it
      // cannot read (a timestamp past 2^63) its connection. Never ours.
      const outcome = await raw.publish('', FUZZ, body(), rawProperties(props)).catch(async () => {
        raw = await RawAmqpPublisher.connect(brokerUrl());
        return 'connection closed';
      });
      if (outcome === 'ok') accepted++;
    }
    expect(accepted).toBeGreaterThan(COUNT * 0.6);

    const target = app.get(Target);
    const check = await amqplib.connect(brokerUrl());
    try {
      check.on('error', () => undefined);
      const ch = await check.createChannel();
      ch.on('error', () => undefined);
      let dead = 0;
      await waitUntil(
        `all ${accepted} accepted messages handled or dead-lettered`,
        async () => {
          dead = (await ch.checkQueue(`${FUZZ}.dlq`)).messageCount;
          return target.handled + dead === accepted;
        },
        45_000,
      );
      // Nothing left behind, unacked or waiting.
      const left = await ch.checkQueue(FUZZ);
      expect(left.messageCount).toBe(0);
      expect(dead).toBeGreaterThanOrEqual(target.failed);
      await ch.close();
    } finally {
      await check.close();
    }
    expect(warren.connectionGeneration('consume')).toBe(generation);
    expect(warren.isConnected()).toBe(true);
    expect(unhandled).toEqual([]);
    // Bounded: what the run holds on to is far below what it moved (~30 MB of bodies).
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(200 * 1024 * 1024);
  }, 120_000);
});

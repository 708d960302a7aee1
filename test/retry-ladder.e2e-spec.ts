import { Injectable, type INestApplicationContext } from '@nestjs/common';
import {
  ConsumerRegistry,
  FAILURE_HEADERS,
  Publisher,
  Subscribe,
  TopologyError,
  WarrenConnection,
  type WarrenContext,
} from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';

/**
 * Retries through the delay ladder (`failure.retryThrough: 'delay-ladder'`): no retry queue per
 * delay, the retried copy back on its queue with its original route, so a service queue hands it
 * to the same method. Runs on RabbitMQ and on the in-memory broker. A second of delay lasts 7 ms
 * here (a ladder of its own, `warren.delay.7ms.*`).
 */

const UNIT_MS = 7;
const LEVELS = 28;
const X = unique('e2e.retry-ladder-x');
const Q = unique('e2e.retry-ladder-q');
const DLQ = `${Q}.dlq`;
// Delays no other suite uses: their retry queues would exist only if this policy declared them.
const DELAYS = [1700, 2900];

interface Seen {
  method: string;
  n: number;
  attempt: number;
  exchange: string;
  routingKey: string;
  deliveryExchange: string;
}

const seen: Seen[] = [];

function record(method: string, payload: { n: number }, ctx: WarrenContext): void {
  const { attempt, exchange, routingKey, deliveryExchange } = ctx;
  seen.push({ method, n: payload.n, attempt, exchange, routingKey, deliveryExchange });
}

@Injectable()
class Jobs {
  @Subscribe(X, 'job.run', { queue: Q, failure: { retryDelays: DELAYS, retryThrough: 'delay-ladder' } })
  onRun(payload: { n: number }, ctx: WarrenContext) {
    record('onRun', payload, ctx);
    // Message 1 succeeds on its third attempt; message 2 never does.
    if (payload.n === 2 || ctx.attempt < 3) throw new Error(`job ${payload.n} fails (attempt ${ctx.attempt})`);
  }

  // What a retried copy would reach if it came back with the ladder's route instead of its own.
  @Subscribe(X, '#', { queue: Q, fallback: true, failure: { retryDelays: DELAYS, retryThrough: 'delay-ladder' } })
  onOther(payload: { n: number }, ctx: WarrenContext) {
    record('onOther', payload, ctx);
  }
}

const brokers: [string, () => string][] = [
  ['RabbitMQ', brokerUrl],
  ['the in-memory broker', () => `memory://${unique('retry-ladder')}`],
];

afterAll(async () => {
  const prefix = `warren.delay.${UNIT_MS}ms`;
  const levels = Array.from({ length: LEVELS }, (_, k) => `${prefix}.level-${k}`);
  await deleteTopology({
    queues: [Q, DLQ, ...levels, `${prefix}.undeliverable`],
    exchanges: [X, ...levels, `${prefix}.deliver`, `${prefix}.undeliverable`],
  });
});

describe.each(brokers)('retries through the delay ladder on %s', (_, url) => {
  let app: INestApplicationContext | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('brings a retried copy back to the same method with its original route, then dead-letters it, with no retry queue per delay', async () => {
    seen.length = 0;
    app = await bootApp({ providers: [Jobs] }, { url: url(), delayLadder: { unitMs: UNIT_MS } });
    const connection = app.get(WarrenConnection);
    // Nothing for the retries is declared at boot: no warren.retry-<delay>ms queue.
    const { queues, handlers } = app.get(ConsumerRegistry).topology();
    expect(queues.map((q) => q.name).filter((name) => name.startsWith('warren.'))).toEqual([]);
    // The read-out says where the retries wait.
    expect(handlers.map((h) => h.failure)).toEqual([
      expect.objectContaining({ mode: 'retry', retryDelays: DELAYS, retryThrough: 'delay-ladder' }),
    ]);
    for (const delay of DELAYS) {
      await expect(connection.withChannel('consume', (ch) => ch.checkQueue(`warren.retry-${delay}ms`))).rejects.toThrow(
        /NOT_FOUND/,
      );
    }

    const publisher = app.get(Publisher);
    await publisher.publish(X, 'job.run', { n: 1 });
    await publisher.publish(X, 'job.run', { n: 2 });
    await waitUntil('message 1 handled on its third attempt', () => seen.some((s) => s.n === 1 && s.attempt === 3));
    const dlqDepth = () => connection.withChannel('consume', async (ch) => (await ch.checkQueue(DLQ)).messageCount);
    await waitUntil('message 2 dead-lettered', async () => (await dlqDepth()) === 1);

    const route = { method: 'onRun', exchange: X, routingKey: 'job.run' };
    const ladder = expect.stringMatching(new RegExp(`^warren\\.delay\\.${UNIT_MS}ms\\.`));
    for (const n of [1, 2]) {
      expect(seen.filter((s) => s.n === n)).toEqual([
        { ...route, n, attempt: 1, deliveryExchange: X },
        { ...route, n, attempt: 2, deliveryExchange: ladder },
        { ...route, n, attempt: 3, deliveryExchange: ladder },
      ]);
    }
    const dead = await connection.withChannel('consume', (ch) => ch.get(DLQ, { noAck: true }));
    expect(dead && dead.properties.headers).toMatchObject({
      [FAILURE_HEADERS.reason]: 'attempts-exhausted',
      [FAILURE_HEADERS.attempts]: 3,
      [FAILURE_HEADERS.exchange]: X,
      [FAILURE_HEADERS.routingKey]: 'job.run',
    });
  });
});

describe('retries through the delay ladder: mistakes', () => {
  it('refuses the ladder for a quorum queue’s retries, naming the handler', async () => {
    const queue = unique('e2e.retry-ladder-quorum');
    @Injectable()
    class Quorum {
      @Subscribe(X, 'job.q', { queue, queueType: 'quorum', failure: { retryThrough: 'delay-ladder' } })
      on() {}
    }
    await expect(bootApp({ providers: [Quorum] }, {})).rejects.toThrow(
      new TopologyError(
        `Quorum.on: failure.retryThrough "delay-ladder" cannot serve a quorum queue: the ladder's queues are classic, ` +
          `on one node, and a retry waiting there would be stranded by that node's loss; leave it to the quorum retry queues`,
      ),
    );
  });
});

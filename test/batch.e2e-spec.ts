import {
  type CallHandler,
  type ExecutionContext,
  Injectable,
  type INestApplicationContext,
  type NestInterceptor,
  UseInterceptors,
} from '@nestjs/common';
import type { Observable } from 'rxjs';
import {
  type BatchContext,
  Consume,
  ConsumerRegistry,
  defineEvent,
  FAILURE_HEADERS,
  Publisher,
  retryQueueName,
  type StandardSchemaV1,
  Subscribe,
  TopologyError,
  WarrenConfigurationError,
  WarrenConnection,
  type WarrenContext,
  WarrenDecoratorError,
} from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';

/**
 * Batch handlers: up to `size` messages per call, each message's failure its own. Every case runs
 * on RabbitMQ and on the in-memory broker, with the same app.
 */

const ITEMS_X = unique('e2e.batch-items');
const ITEMS = unique('e2e.batch-items');
const ITEMS_DLQ = `${ITEMS}.dlq`;
const PARTIAL = unique('e2e.batch-partial');
const PARTIAL_DLQ = `${PARTIAL}.dlq`;
const SMALL = unique('e2e.batch-small');
const RETRY_MS = 100;

interface Item {
  n: number;
  /** The store refuses it: the handler throws for any batch that holds it. */
  refused?: boolean;
  qty: number;
}

/** A Standard Schema written by hand: a quantity must be positive. */
const ItemSchema: StandardSchemaV1<Item> = {
  '~standard': {
    version: 1,
    vendor: 'e2e',
    validate: (value) => {
      const v = value as Partial<Item> | null;
      if (v && typeof v.n === 'number' && typeof v.qty === 'number' && v.qty > 0) return { value: v as Item };
      return { issues: [{ message: 'must be positive', path: ['qty'] }] };
    },
  },
};
const ItemStored = defineEvent<Item>(ITEMS_X, 'item.stored', { schema: ItemSchema });

/** A store written in one call per batch, all or nothing: what a batch handler is for. */
@Injectable()
class Store {
  stored: number[] = [];
  calls: number[] = [];
  deadLetters: { n: number; reason: unknown }[] = [];

  @Subscribe(ItemStored, {
    queue: ITEMS,
    batch: { size: 100, timeoutMs: 200 },
    failure: { retryDelays: [RETRY_MS] },
  })
  onItems(items: Item[]) {
    this.calls.push(items.length);
    const refused = items.find((i) => i.refused);
    if (refused) throw new Error(`the store refuses item ${refused.n}`);
    this.stored.push(...items.map((i) => i.n));
  }

  @Consume(ITEMS_DLQ, { failure: 'drop' })
  onDead(item: Item, ctx: WarrenContext) {
    this.deadLetters.push({ n: item.n, reason: ctx.headers[FAILURE_HEADERS.reason] });
  }
}

/** Settles single messages of its batch itself. */
@Injectable()
class Settling {
  calls: { n: number; attempt: number }[][] = [];
  deadLetters: { n: number; reason: unknown; error: unknown }[] = [];

  @Consume(PARTIAL, { batch: { size: 10, timeoutMs: 200 }, failure: { retryDelays: [RETRY_MS] } })
  onBatch(payloads: { n: number }[], contexts: BatchContext[]) {
    this.calls.push(payloads.map((p, i) => ({ n: p.n, attempt: contexts[i].attempt })));
    payloads.forEach((p, i) => {
      if (contexts[i].attempt > 1) return;
      if (p.n === 2) contexts[i].deadLetter('item 2 is malformed');
      if (p.n === 5) contexts[i].fail(new Error('item 5 must wait'));
      if (p.n === 7) contexts[i].ack();
    });
  }

  @Consume(PARTIAL_DLQ, { failure: 'drop' })
  onDead(p: { n: number }, ctx: WarrenContext) {
    this.deadLetters.push({
      n: p.n,
      reason: ctx.headers[FAILURE_HEADERS.reason],
      error: ctx.headers[FAILURE_HEADERS.errorMessage],
    });
  }
}

/** What an interceptor of a batch handler sees. */
@Injectable()
class SeeTheBatch implements NestInterceptor {
  static seen: { data: unknown; contexts: number }[] = [];

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const rpc = context.switchToRpc();
    SeeTheBatch.seen.push({ data: rpc.getData(), contexts: (rpc.getContext() as unknown[]).length });
    return next.handle();
  }
}

@Injectable()
class Small {
  calls: number[][] = [];

  @UseInterceptors(SeeTheBatch)
  @Consume(SMALL, { batch: { size: 100, timeoutMs: 300 }, failure: 'drop' })
  onBatch(payloads: { n: number }[]) {
    this.calls.push(payloads.map((p) => p.n));
  }
}

const brokers: [string, () => string][] = [
  ['RabbitMQ', brokerUrl],
  ['the in-memory broker', () => `memory://${unique('batch')}`],
];

afterAll(async () => {
  await deleteTopology({
    queues: [ITEMS, ITEMS_DLQ, PARTIAL, PARTIAL_DLQ, SMALL, retryQueueName(RETRY_MS)],
    exchanges: [ITEMS_X, retryQueueName(RETRY_MS)],
  });
});

/** Publishes with the consumer paused, so the messages wait in the queue and the batches fill. */
async function publishPaused(app: INestApplicationContext, label: string, send: () => Promise<void>): Promise<void> {
  const consumer = app
    .get(ConsumerRegistry)
    .list()
    .find((c) => c.label === label)!;
  await consumer.pause();
  await send();
  await consumer.resume();
}

/** Messages ready in `queue` (not delivered to a consumer). */
function ready(app: INestApplicationContext, queue: string): Promise<number> {
  return app.get(WarrenConnection).withChannel('consume', async (ch) => (await ch.checkQueue(queue)).messageCount);
}

describe.each(brokers)('batch handlers on %s', (_, url) => {
  let app: INestApplicationContext | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('handles 10 000 messages in batches of 100, 1 % poison: every good one stored once, exactly the poison ones dead-lettered', async () => {
    app = await bootApp({ providers: [Store] }, { url: url() });
    const store = app.get(Store);
    const invalid = new Set<number>();
    const refused = new Set<number>();
    await publishPaused(app, 'Store.onItems', async () => {
      const publisher = app!.get(Publisher);
      for (let chunk = 0; chunk < 10; chunk++) {
        const sends: Promise<void>[] = [];
        for (let i = 0; i < 1000; i++) {
          const n = chunk * 1000 + i;
          // 1 %: half fail the contract's schema, half the store refuses.
          if (n % 100 === 7) invalid.add(n);
          if (n % 100 === 57) refused.add(n);
          const item = { n, qty: invalid.has(n) ? -1 : 1, ...(refused.has(n) && { refused: true }) };
          // Published raw: the publisher would refuse an invalid payload against the contract.
          sends.push(publisher.publish(ITEMS_X, 'item.stored', item));
        }
        await Promise.all(sends);
      }
    });
    const poison = invalid.size + refused.size;
    await waitUntil(
      'every message stored or dead-lettered',
      () => store.stored.length + store.deadLetters.length >= 10_000,
      150_000,
    );

    const good = Array.from({ length: 10_000 }, (_, n) => n).filter((n) => !invalid.has(n) && !refused.has(n));
    expect(store.stored.length).toBe(good.length);
    expect([...store.stored].sort((a, b) => a - b)).toEqual(good);
    const dead = [...store.deadLetters].sort((a, b) => a.n - b.n);
    expect(dead).toHaveLength(poison);
    expect(dead.filter((d) => invalid.has(d.n)).map((d) => d.reason)).toEqual([...invalid].map(() => 'poison'));
    // The refused ones were retried once on their own, then dead-lettered.
    expect(dead.filter((d) => refused.has(d.n)).map((d) => d.reason)).toEqual(
      [...refused].map(() => 'attempts-exhausted'),
    );
    // Never more than the batch size at once; the queued messages went in full batches of 100
    // (99 where a schema-invalid one was dead-lettered first, or the batch's timer ran out on a loaded machine).
    expect(Math.max(...store.calls)).toBeLessThanOrEqual(100);
    expect(store.calls.filter((size) => size >= 99).length).toBeGreaterThanOrEqual(50);
    await waitUntil('the queue empty', async () => (await ready(app!, ITEMS)) === 0);
  }, 240_000);

  it('lets the handler ack, fail and dead-letter single messages; the rest are acked with the batch', async () => {
    app = await bootApp({ providers: [Settling] }, { url: url() });
    const partial = app.get(Settling);
    await publishPaused(app, 'Settling.onBatch', async () => {
      const publisher = app!.get(Publisher);
      await Promise.all(Array.from({ length: 10 }, (_, n) => publisher.sendToQueue(PARTIAL, { n })));
    });
    await waitUntil('item 5 handled on its retry', () => partial.calls.length >= 2);
    await waitUntil('item 2 dead-lettered', () => partial.deadLetters.length >= 1);

    expect(partial.calls).toEqual([
      Array.from({ length: 10 }, (_, n) => ({ n, attempt: 1 })),
      // Failed on its own: retried on its own, the others not again.
      [{ n: 5, attempt: 2 }],
    ]);
    expect(partial.deadLetters).toEqual([{ n: 2, reason: 'poison', error: 'item 2 is malformed' }]);
    // Nothing left unacked or requeued: no message comes back.
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS * 5));
    expect(partial.calls).toHaveLength(2);
    expect(await ready(app, PARTIAL)).toBe(0);
  });

  it('sends a partial batch after its timeout, through the enhancers', async () => {
    SeeTheBatch.seen = [];
    app = await bootApp({ providers: [Small, SeeTheBatch] }, { url: url() });
    const small = app.get(Small);
    const publisher = app.get(Publisher);
    await Promise.all([1, 2, 3].map((n) => publisher.sendToQueue(SMALL, { n })));
    await waitUntil('the partial batch', () => small.calls.length === 1);
    expect(small.calls).toEqual([[1, 2, 3]]);
    // The interceptor's data is the batch; its context, the batch's contexts.
    expect(SeeTheBatch.seen).toEqual([{ data: [{ n: 1 }, { n: 2 }, { n: 3 }], contexts: 3 }]);
  });

  it('hands the batch it holds to the handler at shutdown, rather than leaving it unacked', async () => {
    const queue = unique('e2e.batch-shutdown');
    const got: number[][] = [];
    @Injectable()
    class Slow {
      @Consume(queue, { batch: { size: 100, timeoutMs: 60_000 }, failure: 'drop' })
      onBatch(payloads: { n: number }[]) {
        got.push(payloads.map((p) => p.n));
      }
    }
    app = await bootApp({ providers: [Slow] }, { url: url() });
    const publisher = app.get(Publisher);
    await Promise.all([1, 2, 3, 4].map((n) => publisher.sendToQueue(queue, { n })));
    // Delivered to the consumer and held in its batch, whose timeout is a minute away.
    await waitUntil('the four delivered', async () => (await ready(app!, queue)) === 0);
    expect(got).toEqual([]);
    const closing = app;
    app = undefined;
    await closing.close();
    expect(got).toEqual([[1, 2, 3, 4]]);
    if (url() === brokerUrl()) await deleteTopology({ queues: [queue] });
  });

  it('raises an unset prefetch to twice the batch size, and refuses one below it at boot', async () => {
    const queue = unique('e2e.batch-prefetch');
    @Injectable()
    class TooSmall {
      @Consume(queue, { prefetch: 10, batch: { size: 50 } })
      onBatch() {}
    }
    await expect(bootApp({ providers: [TooSmall] }, { url: url() })).rejects.toThrow(
      new TopologyError(
        'TooSmall.onBatch: prefetch 10 is below batch.size 50: the broker would never send a full batch, so every ' +
          'batch would wait its timeout; raise the prefetch to at least 50, or leave it unset (it is then twice the batch size)',
      ),
    );
    @Injectable()
    class Unset {
      @Consume(queue, { batch: { size: 50 }, failure: 'drop' })
      onBatch() {}
    }
    app = await bootApp({ providers: [Unset] }, { url: url(), prefetch: 20 });
    const [handler] = app.get(ConsumerRegistry).topology().handlers;
    expect(handler).toMatchObject({ label: 'Unset.onBatch', prefetch: 100, batch: { size: 50, timeoutMs: 50 } });
    if (url() === brokerUrl()) await deleteTopology({ queues: [queue] });
  });
});

describe('batch handler mistakes', () => {
  it('refuses a malformed batch option where the class is defined, naming the handler', () => {
    expect(() => Consume('q', { batch: { size: 0 } })({}, 'on', {})).toThrow(
      new WarrenDecoratorError('@Consume() on Object.on: batch.size must be a whole number from 1 to 65535, got 0'),
    );
    expect(() => Subscribe('x', 'k', { batch: { size: 10, timeout: 5 } as never })({}, 'on', {})).toThrow(
      new WarrenDecoratorError('@Subscribe() on Object.on: batch has no option "timeout" (size, timeoutMs)'),
    );
    expect(() => Consume('q', { batch: { size: 10, timeoutMs: -1 } })({}, 'on', {})).toThrow(
      new WarrenDecoratorError(
        '@Consume() on Object.on: batch.timeoutMs must be a whole number of milliseconds from 0 to 60000, got -1',
      ),
    );
  });

  it('refuses a batch handler on a service queue, and a batch on a runtime subscription', async () => {
    const queue = unique('e2e.batch-svc');
    @Injectable()
    class Shared {
      @Subscribe(ITEMS_X, 'a', { queue, batch: { size: 10 } })
      onA() {}

      @Subscribe(ITEMS_X, 'b', { queue })
      onB() {}
    }
    await expect(bootApp({ providers: [Shared] })).rejects.toThrow(
      new TopologyError(
        `Service queue "${queue}": Shared.onA, Shared.onB name one queue, and Shared.onA is a batch handler; ` +
          `a batch handler needs a queue of its own`,
      ),
    );
    const app = await bootApp({});
    try {
      await expect(
        app.get(ConsumerRegistry).consume(queue, () => undefined, { label: 'bulk', batch: { size: 10 } }),
      ).rejects.toThrow(
        new WarrenConfigurationError(
          'bulk: a runtime subscription handles one message at a time; batch handlers are declared with ' +
            '@Subscribe()/@Consume() (their batch option)',
        ),
      );
    } finally {
      await app.close();
    }
  });
});

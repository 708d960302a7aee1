import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Consume, Publisher, WARREN_MODULE_OPTIONS, WarrenModule } from 'nestjs-warren';
import { memoryBroker } from 'nestjs-warren/memory';
import { recordHandled } from 'nestjs-warren/testing';
import { AppModule } from '../src/app.module.js';
import { OrderPlaced, OrdersListener } from '../src/orders.js';

// The app's own module on memory://, its options provider overridden (docs/testing.md).
describe('nest12-esm on memory://', () => {
  let app: INestApplicationContext;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .overrideProvider(WARREN_MODULE_OPTIONS)
      .useValue({ url: 'memory://nest12' })
      .compile();
    app = await moduleRef.init();
  });

  afterAll(() => app.close());

  it('hands a published event to its handler, parameter decorators included', async () => {
    const handled = recordHandled(app, 'OrdersListener.onPlaced');
    await app.get(Publisher).publish(OrderPlaced, { id: 'o-1', total: 3 }, { headers: { 'x-tenant': 'acme' } });
    await handled.waitForCount(1);
    expect(app.get(OrdersListener).seen).toEqual([{ id: 'o-1', tenant: 'acme', routingKey: 'order.placed' }]);
    expect(memoryBroker('nest12').exchangeNames()).toContain(OrderPlaced.exchange);
  });
});

const REFUNDS = 'compat.nest12.refunds';

@Injectable()
class Refunds {
  @Consume(REFUNDS, { failure: { retryDelays: [60_000, 600_000] } })
  refund(): void {
    throw new Error('refund refused');
  }
}

// docs/testing.md's vitest line: with these timers faked (the event loop's turns left real),
// memory:// retry delays of minutes take no time. Real timers would outlast the test's timeout.
describe('nest12-esm on memory:// with vitest fake timers', () => {
  it('runs the retry delays on the fake clock, then dead-letters', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    try {
      const moduleRef = await Test.createTestingModule({
        imports: [WarrenModule.forRoot({ url: 'memory://nest12-timers' })],
        providers: [Refunds],
      }).compile();
      moduleRef.useLogger(false);
      const timed = await moduleRef.init();
      try {
        const handled = recordHandled(timed, 'Refunds.refund');
        await timed.get(Publisher).sendToQueue(REFUNDS, { id: 'r-1' });
        await handled.waitForCount(1);
        await vi.advanceTimersByTimeAsync(60_000);
        await handled.waitForCount(2);
        await vi.advanceTimersByTimeAsync(600_000);
        await handled.waitForCount(3);
        const [dead, ...more] = memoryBroker('nest12-timers').peek(`${REFUNDS}.dlq`);
        expect(more).toEqual([]);
        expect(dead.payload).toEqual({ id: 'r-1' });
      } finally {
        await timed.close();
      }
    } finally {
      vi.useRealTimers();
    }
  });
});

import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Publisher, WARREN_MODULE_OPTIONS } from 'nestjs-warren';
import { memoryBroker } from 'nestjs-warren/memory';
import { recordHandled } from 'nestjs-warren/testing';
import { AppModule } from '../src/app.module';
import { OrderPlaced, OrdersListener } from '../src/orders';

// The app's own module on memory://, its options provider overridden (docs/testing.md).
describe('nest11-cjs on memory://', () => {
  let app: INestApplicationContext;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .overrideProvider(WARREN_MODULE_OPTIONS)
      .useValue({ url: 'memory://nest11' })
      .compile();
    app = await moduleRef.init();
  });

  afterAll(() => app.close());

  it('hands a published event to its handler, parameter decorators included', async () => {
    const handled = recordHandled(app, 'OrdersListener.onPlaced');
    await app.get(Publisher).publish(OrderPlaced, { id: 'o-1', total: 3 }, { headers: { 'x-tenant': 'acme' } });
    await handled.waitForCount(1);
    expect(app.get(OrdersListener).seen).toEqual([{ id: 'o-1', tenant: 'acme', routingKey: 'order.placed' }]);
    expect(memoryBroker('nest11').exchangeNames()).toContain(OrderPlaced.exchange);
  });
});

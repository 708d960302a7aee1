import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Publisher } from 'nestjs-warren';
import { recordHandled } from 'nestjs-warren/testing';
import { AppModule } from '../src/app.module';
import { OrderPlaced, OrdersListener } from '../src/orders';

// The same module on the real broker of RABBITMQ_URL, which the enclosing test run provides.
describe('nest11-cjs on RabbitMQ', () => {
  let app: INestApplicationContext;

  beforeAll(async () => {
    if (!process.env.RABBITMQ_URL) throw new Error('RABBITMQ_URL is not set');
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = await moduleRef.init();
  });

  afterAll(() => app.close());

  it('hands a published event to its handler, parameter decorators included', async () => {
    const handled = recordHandled(app, 'OrdersListener.onPlaced');
    await app.get(Publisher).publish(OrderPlaced, { id: 'o-2', total: 5 }, { headers: { 'x-tenant': 'acme' } });
    await handled.waitForCount(1);
    expect(app.get(OrdersListener).seen).toEqual([{ id: 'o-2', tenant: 'acme', routingKey: 'order.placed' }]);
  });
});

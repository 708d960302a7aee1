import { STEPS } from './contracts.js';
import { OrdersModule } from './orders.module.js';

/**
 * The whole order service as one module, for tools that read its topology without running it:
 * `warren topology dist/src/orders/app.module.js`. The URL is never connected to there.
 */
export default OrdersModule.forRoot({
  api: true,
  stock: true,
  workers: STEPS,
  url: process.env.RABBITMQ_URL ?? 'amqp://localhost',
});

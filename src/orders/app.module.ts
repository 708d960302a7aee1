import { STEPS } from './contracts.js';
import { openOrdersDatabase } from './database.js';
import { OrdersModule } from './orders.module.js';

/**
 * The whole order service as one module, for tools that read its topology without running it:
 * `warren topology dist/src/orders/app.module.js`. The URL is never connected to there, and the
 * database is a throwaway in-memory PGlite: reading the topology boots the providers (the API and
 * the workers need a database to be built), and must not touch anyone's data.
 */
const database = await openOrdersDatabase({ kind: 'pglite', dataDir: 'memory://', source: 'in-memory' });

export default OrdersModule.forRoot({
  api: true,
  stock: true,
  workers: STEPS,
  url: process.env.RABBITMQ_URL ?? 'amqp://localhost',
  database,
});

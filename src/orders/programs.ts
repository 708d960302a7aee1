import { type INestApplicationContext, Logger, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { redactCredentials } from 'nestjs-warren';
import { WarrenAsyncApi } from 'nestjs-warren/asyncapi';
import { ordersAsyncApi } from './asyncapi.js';
import { ordersBroker } from './broker.js';
import type { OutboxRelayOptions } from 'nestjs-warren/outbox';
import { type Step, STEPS } from './contracts.js';
import { describeChoice, type OrdersDatabase, ordersDatabaseChoice, openOrdersDatabase } from './database.js';
import { describeParts, OrdersModule, type OrdersParts } from './orders.module.js';
import { type OrdersMetrics, startOrdersMetrics } from './metrics.js';

/** A program of the order service: `start` resolves with an exit code, or -1 once it is up and serving. */
export interface OrdersProgram {
  name: string;
  usage: string;
  start(args: string[]): Promise<number>;
}

export const DEFAULT_PORT = 3000;

/** How long a stopping API waits for its requests in flight; longer than a stock check may take. */
const HTTP_DRAIN_MS = 10_000;

// Unlike the tutorials' programs, whose console lines are their output, a service logs what it
// does; WARREN_LOG=debug adds Warren's and Nest's debug lines.
function logLevels(): LogLevel[] {
  const levels: LogLevel[] = ['fatal', 'error', 'warn', 'log'];
  return process.env.WARREN_LOG === 'debug' ? [...levels, 'debug', 'verbose'] : levels;
}

function portFromEnv(): number {
  const raw = process.env.PORT;
  if (raw === undefined || raw === '') return DEFAULT_PORT;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) throw new Error(`PORT must be a port number (0-65535), got "${raw}"`);
  return port;
}

/**
 * Fault tests only: ORDERS_TEST_HOLD_RELAY=1 makes the outbox relay stop for good inside its first
 * pass that has claimed rows, before it publishes them, so a test can kill the API between an
 * order's commit and its announcement's confirm.
 */
function relayFromEnv(logger: Logger): OutboxRelayOptions | undefined {
  if (process.env.ORDERS_TEST_HOLD_RELAY !== '1') return undefined;
  logger.warn('ORDERS_TEST_HOLD_RELAY=1: the outbox relay will hold its first pass for ever (fault tests only)');
  return {
    hold: () => {
      logger.warn('outbox relay holding a pass: its orders are committed and not announced');
      return new Promise<void>(() => undefined);
    },
  };
}

async function serve(parts: OrdersParts, layout: 'all-in-one' | 'split', connectionName: string): Promise<number> {
  const logger = new Logger('Orders');
  const broker = ordersBroker(layout);
  const port = parts.api ? portFromEnv() : undefined;
  // A process serving HTTP starts without the broker: /health/ready answers 503 until it comes,
  // and the orchestrator keeps traffic away meanwhile instead of restarting the process. Workers
  // have nothing to serve without it and keep the fail-fast boot.
  const warren = parts.api ? { waitForBroker: false } : undefined;
  const brokerLine = `broker ${redactCredentials(broker.url)} (${broker.source === 'RABBITMQ_URL' ? 'from RABBITMQ_URL' : 'default: RABBITMQ_URL is not set'})`;
  const needsDatabase = parts.api || (parts.workers?.length ?? 0) > 0;
  const choice = needsDatabase ? ordersDatabaseChoice(layout) : undefined;
  logger.log(choice ? `database ${describeChoice(choice)}, ${brokerLine}` : brokerLine);
  const database: OrdersDatabase | undefined = choice ? await openOrdersDatabase(choice) : undefined;
  const module = OrdersModule.forRoot({
    ...parts,
    url: broker.url,
    connectionName,
    database,
    relay: relayFromEnv(logger),
    warren,
  });
  let app: INestApplicationContext;
  let server: Server | undefined;
  let metrics: OrdersMetrics | undefined;
  let where = '';
  if (port !== undefined) {
    // Before the app: Warren looks for the MeterProvider when it connects.
    metrics = await startOrdersMetrics(logger);
    const http = await NestFactory.create(module, { logger: logLevels() });
    app = http;
    // Before listen(): Nest's 404 handler, added when the app initialises, would answer first.
    WarrenAsyncApi.setup('/asyncapi', http, () => ordersAsyncApi(http, parts));
    metrics.setup(http);
    await http.listen(port);
    server = http.getHttpServer() as Server;
    where = ` on http://localhost:${(server.address() as AddressInfo).port}`;
  } else {
    app = await NestFactory.createApplicationContext(module, { logger: logLevels() });
  }
  const stop = async () => {
    // Nest cancels Warren's consumers before it drains the HTTP server: a request still in
    // flight would wait out its stock check's timeout for a handler that is already gone. So
    // the requests finish first, with everything still up.
    if (server) {
      const drained = new Promise((resolve) => server.close(resolve));
      // A client that keeps its connection busy must not hold the process up for ever.
      const cutOff = setTimeout(() => server.closeAllConnections(), HTTP_DRAIN_MS);
      await drained;
      clearTimeout(cutOff);
    }
    await app.close();
    await metrics?.shutdown();
    await database?.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  logger.log(`order service up${where}: ${describeParts(parts)}`);
  return -1;
}

/** `npm start` with no program: the whole service in one process. */
export const ordersService: OrdersProgram = {
  name: 'orders',
  usage:
    'orders                     (the default) the order service in one process: API on PORT (3000), workers, stock service',
  start: () => serve({ api: true, stock: true, workers: STEPS }, 'all-in-one', 'orders'),
};

export const ordersApi: OrdersProgram = {
  name: 'orders-api',
  usage: 'orders-api                 the order API on PORT (3000) with the stock service, without the workers',
  start: () => serve({ api: true, stock: true }, 'split', 'orders-api'),
};

export const ordersWorker: OrdersProgram = {
  name: 'orders-worker',
  usage: `orders-worker <${STEPS.join('|')}>...   one or more of the order workers`,
  start: async (args) => {
    const unknown = args.filter((a) => !(STEPS as readonly string[]).includes(a));
    if (args.length === 0 || unknown.length > 0) {
      const why = unknown.length > 0 ? `Unknown worker ${unknown.map((u) => `"${u}"`).join(', ')}. ` : '';
      console.error(`${why}Usage: orders-worker <${STEPS.join('|')}>...`);
      return 1;
    }
    const workers = args as Step[];
    return serve({ workers }, 'split', `orders-worker-${[...new Set(workers)].join('-')}`);
  },
};

export const ordersPrograms: OrdersProgram[] = [ordersService, ordersApi, ordersWorker];

// One outbox trial in a fresh process: a Nest app with Warren, and with the outbox when it measures
// it, on a database of its own; orders written by `inFlight` concurrent callers, each one a
// transaction that inserts an order row and then either
//   - direct: commits, then publishes the order-placed event with `Publisher.publish()` (resolved on
//     the broker's confirm): the two separate acts the outbox exists to replace; or
//   - outbox: writes the event with `outbox.publish(tx, …)` in the same transaction and commits;
//     the relay (woken by the commit's NOTIFY) publishes it with confirms and marks it sent.
// A consumer records when each order's handler first starts. Prints one `@@RESULT {json}` line.
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Publisher, Subscribe, WarrenModule } from 'nestjs-warren';
import { Outbox, OutboxModule, pgPoolDatabase } from 'nestjs-warren/outbox';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { collectGarbage, percentile, pump } from '../harness.js';
import { reportResult, trialFailed } from '../trial.js';

export type OutboxMode = 'direct' | 'outbox';

export interface OutboxTrialConfig {
  mode: OutboxMode;
  url: string;
  databaseUrl: string;
  tag: string;
  exchange: string;
  queue: string;
  routingKey: string;
  n: number;
  warmup: number;
  inFlight: number;
  prefetch: number;
  timeoutMs: number;
}

export interface OutboxResult {
  mode: OutboxMode;
  n: number;
  inFlight: number;
  /** First order's transaction begun to the last order's handler started. */
  seconds: number;
  ordersPerSec: number;
  /** What the caller (the HTTP handler) waits: transaction begun to its write (and, direct, the confirm) done. */
  answerP50Ms: number;
  answerP99Ms: number;
  /** The caller's commit to the order's handler starting: what the outbox adds is here. */
  startP50Ms: number;
  startP99Ms: number;
  lost: number;
  duplicated: number;
  /** CPU time (user + system) of the trial process over the measured orders, ÷ n. */
  cpuUsPerOrder: number;
}

interface PlacedEvent {
  phase: 'w' | 'm';
  id: number;
  customer: string;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '') as OutboxTrialConfig;
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: config.inFlight + 4 });
  pool.on('error', () => undefined);
  await pool.query(
    'CREATE TABLE bench_orders (id int PRIMARY KEY, customer text NOT NULL, placed_at timestamptz NOT NULL)',
  );

  const total = config.warmup + config.n;
  const committedAt = new Float64Array(total);
  const startedAt = new Float64Array(total).fill(NaN);
  const starts = new Uint16Array(total);
  let started = 0;
  let onAllStarted = () => undefined as void;
  const allStarted = new Promise<void>((resolve) => (onAllStarted = resolve));

  @Injectable()
  class Placed {
    @Subscribe(config.exchange, config.routingKey, { queue: config.queue, prefetch: config.prefetch })
    onPlaced(event: PlacedEvent): void {
      const i = event.phase === 'w' ? event.id : config.warmup + event.id;
      if (starts[i]++ === 0) {
        startedAt[i] = performance.now();
        if (++started === total) onAllStarted();
      }
    }
  }

  @Module({
    imports: [
      WarrenModule.forRoot({ url: config.url, prefetch: config.prefetch, connectionName: `bench:${config.tag}` }),
      ...(config.mode === 'outbox' ? [OutboxModule.forRoot({ database: pgPoolDatabase(pool), migrate: true })] : []),
    ],
    providers: [Placed],
  })
  class BenchModule {}

  const app: INestApplicationContext = await NestFactory.createApplicationContext(BenchModule, {
    logger: ['error', 'warn'],
  });
  const publisher = app.get(Publisher);
  const outbox = config.mode === 'outbox' ? app.get(Outbox) : undefined;
  const answer = new Float64Array(total);

  const place = async (phase: 'w' | 'm', id: number): Promise<void> => {
    const i = phase === 'w' ? id : config.warmup + id;
    const event: PlacedEvent = { phase, id, customer: `customer ${i}` };
    const t0 = performance.now();
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO bench_orders (id, customer, placed_at) VALUES ($1, $2, now())', [
        i,
        event.customer,
      ]);
      if (outbox) await outbox.publish(client, config.exchange, config.routingKey, event);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    committedAt[i] = performance.now();
    if (!outbox) await publisher.publish(config.exchange, config.routingKey, event);
    answer[i] = performance.now() - t0;
  };

  const waitStarted = (count: number) =>
    new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + config.timeoutMs;
      const check = () => {
        if (started >= count) return resolve();
        if (Date.now() > deadline) return reject(new Error(`${count - started} orders' handlers never started`));
        setTimeout(check, 5);
      };
      check();
    });

  await pump(config.warmup, config.inFlight, (id) => place('w', id));
  await waitStarted(config.warmup);
  collectGarbage();

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await pump(config.n, config.inFlight, (id) => place('m', id));
  await Promise.race([allStarted, waitStarted(total)]);
  const seconds = (Math.max(...startedAt.subarray(config.warmup)) - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // A redelivery or a re-sent row would arrive shortly after: give duplicates a moment to show.
  await new Promise((r) => setTimeout(r, 500));

  const measured = (from: Float64Array) => from.subarray(config.warmup);
  const latency = measured(startedAt).map((t, k) => t - committedAt[config.warmup + k]);
  const result: OutboxResult = {
    mode: config.mode,
    n: config.n,
    inFlight: config.inFlight,
    seconds,
    ordersPerSec: config.n / seconds,
    answerP50Ms: percentile(measured(answer), 0.5),
    answerP99Ms: percentile(measured(answer), 0.99),
    startP50Ms: percentile(latency, 0.5),
    startP99Ms: percentile(latency, 0.99),
    lost: measured(startedAt).filter((t) => Number.isNaN(t)).length,
    duplicated: [...starts].reduce((sum, c) => sum + Math.max(0, c - 1), 0),
    cpuUsPerOrder: (cpu.user + cpu.system) / config.n,
  };
  await app.close();
  await pool.end();
  reportResult(result);
}

main().catch(trialFailed);

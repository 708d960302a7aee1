// One trial of the delayed-delivery scenario in a fresh process: a Nest app with Warren whose
// delay ladder runs `unitMs` to a second, a @Subscribe handler on a durable queue, and `n`
// persistent ~1 KB messages published with random delays of 0 to `maxDelayS` seconds (the same
// seeded delays every run). Each message's lateness is its arrival less its publish plus its
// delay (in the ladder's time); a message that arrives early would be a bug of the ladder.
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Publisher, Subscribe, WarrenModule } from 'nestjs-warren';
import amqplib from 'amqplib';
import { performance } from 'node:perf_hooks';
import { percentile, pump } from '../harness.js';
import { reportResult, trialFailed } from '../side/side.js';
import { randomDelays } from './delays.js';

export interface DelayedTrialConfig {
  /**
   * delayed: the messages through the ladder to a Warren handler. queued: the reference — the same
   * messages published without a delay to a durable queue nobody consumes, held `holdMs`, then deleted.
   */
  mode: 'delayed' | 'queued';
  holdMs: number;
  url: string;
  tag: string;
  exchange: string;
  queue: string;
  n: number;
  maxDelayS: number;
  unitMs: number;
  seed: number;
  publishWindow: number;
  prefetch: number;
  timeoutMs: number;
}

export interface DelayedResult {
  n: number;
  /** First publish to the last publish confirmed. */
  publishSeconds: number;
  /** First publish to the last message's first delivery. */
  deliverSeconds: number;
  /** The longest delay asked for, in the ladder's time: no run can deliver everything sooner. */
  longestDelaySeconds: number;
  latenessP50Ms: number;
  latenessP99Ms: number;
  latenessMaxMs: number;
  /** Messages delivered before their time: must be 0. */
  early: number;
  lost: number;
  duplicated: number;
  cpuUsPerMsg: number;
}

interface DelayedEvent {
  id: number;
  body: string;
}

const BODY = 'x'.repeat(1000);

/** The reference: what the broker holds for the same messages in a plain queue. */
async function queued(config: DelayedTrialConfig): Promise<void> {
  const connection = await amqplib.connect(config.url, {
    clientProperties: { connection_name: `bench:${config.tag}` },
  });
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(config.queue, { durable: true });
  const t0 = performance.now();
  await pump(
    config.n,
    config.publishWindow,
    (id) =>
      new Promise<void>((resolve, reject) =>
        channel.sendToQueue(
          config.queue,
          Buffer.from(JSON.stringify({ id, body: BODY } satisfies DelayedEvent)),
          { persistent: true, contentType: 'application/json' },
          (err) => (err ? reject(new Error(String(err))) : resolve()),
        ),
      ),
  );
  const published = performance.now();
  await new Promise((resolve) => setTimeout(resolve, config.holdMs));
  const { messageCount } = await channel.checkQueue(config.queue);
  await channel.deleteQueue(config.queue);
  await connection.close();
  const result: DelayedResult = {
    n: config.n,
    publishSeconds: (published - t0) / 1000,
    deliverSeconds: NaN,
    longestDelaySeconds: 0,
    latenessP50Ms: NaN,
    latenessP99Ms: NaN,
    latenessMaxMs: NaN,
    early: 0,
    lost: config.n - messageCount,
    duplicated: 0,
    cpuUsPerMsg: NaN,
  };
  reportResult(result);
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '') as DelayedTrialConfig;
  if (config.mode === 'queued') return queued(config);
  const delays = randomDelays(config.n, config.maxDelayS, config.seed);
  const sentAt = new Float64Array(config.n);
  const arrivedAt = new Float64Array(config.n).fill(NaN);
  const seen = new Uint16Array(config.n);
  let distinct = 0;
  let onAll = () => undefined as void;
  const all = new Promise<void>((resolve) => (onAll = resolve));

  @Injectable()
  class Reminders {
    @Subscribe(config.exchange, 'bench.reminder', { queue: config.queue, prefetch: config.prefetch })
    onReminder(event: DelayedEvent): void {
      if (seen[event.id]++ === 0) {
        arrivedAt[event.id] = performance.now();
        if (++distinct === config.n) onAll();
      }
    }
  }

  @Module({
    imports: [
      WarrenModule.forRoot({
        url: config.url,
        prefetch: config.prefetch,
        connectionName: `bench:${config.tag}`,
        delayLadder: { unitMs: config.unitMs },
      }),
    ],
    providers: [Reminders],
  })
  class BenchModule {}

  const app: INestApplicationContext = await NestFactory.createApplicationContext(BenchModule, {
    logger: ['error', 'warn'],
  });
  const publisher = app.get(Publisher);

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await pump(config.n, config.publishWindow, (id) => {
    sentAt[id] = performance.now();
    return publisher.publish(config.exchange, 'bench.reminder', { id, body: BODY } satisfies DelayedEvent, {
      delay: delays[id] * 1000,
    });
  });
  const published = performance.now();
  const deadline = new Promise((resolve) => setTimeout(resolve, config.timeoutMs).unref());
  await Promise.race([all, deadline]);
  const cpu = process.cpuUsage(cpu0);
  const last = Math.max(...arrivedAt.filter((t) => !Number.isNaN(t)));
  // A message delivered twice would come shortly after its first delivery.
  await new Promise((resolve) => setTimeout(resolve, 500));

  const lateness = new Float64Array(config.n);
  let early = 0;
  let k = 0;
  for (let i = 0; i < config.n; i++) {
    if (Number.isNaN(arrivedAt[i])) continue;
    const late = arrivedAt[i] - (sentAt[i] + delays[i] * config.unitMs);
    if (late < 0) early++;
    lateness[k++] = late;
  }
  const measured = lateness.subarray(0, k);
  const result: DelayedResult = {
    n: config.n,
    publishSeconds: (published - t0) / 1000,
    deliverSeconds: (last - t0) / 1000,
    longestDelaySeconds: (Math.max(...delays) * config.unitMs) / 1000,
    latenessP50Ms: percentile(measured, 0.5),
    latenessP99Ms: percentile(measured, 0.99),
    latenessMaxMs: k ? Math.max(...measured) : NaN,
    early,
    lost: config.n - distinct,
    duplicated: [...seen].reduce((sum, c) => sum + Math.max(0, c - 1), 0),
    cpuUsPerMsg: (cpu.user + cpu.system) / config.n,
  };
  await app.close();
  reportResult(result);
}

main().catch(trialFailed);

// The outbox scenario of `npm run bench`: the same orders written and announced with a direct
// publish after the commit, and through the transactional outbox, interleaved run by run. Each
// trial is a fresh process (trial.ts) on a fresh database of the PostgreSQL in DATABASE_URL, or of
// a private server the driver starts (nestjs-warren/testing's startPostgres) and stops afterwards.
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freshDatabase, startPostgres } from 'nestjs-warren/testing';
import { trialSpec, type BrokerAdmin } from '../broker.js';
import { runTrialProcess } from '../side/side.js';
import type { OutboxMode, OutboxResult, OutboxTrialConfig } from './trial.js';

const here = dirname(fileURLToPath(import.meta.url)); // bench/dist/src/outbox
const trialPath = join(here, 'trial.js');
const MODES: readonly OutboxMode[] = ['direct', 'outbox'];

export const OUTBOX_LABELS: Record<OutboxMode, string> = {
  direct: 'commit, then Publisher.publish() (no outbox)',
  outbox: 'outbox.publish(tx) in the transaction, relay publishes',
};

export interface OutboxBenchOptions {
  runs: number;
  n: number;
  warmup: number;
  inFlight: number;
  prefetch: number;
  pauseMs: number;
  trialTimeoutS: number;
}

export interface OutboxTrial {
  run: number;
  mode: OutboxMode;
  load1: number;
  result?: OutboxResult;
  error?: string;
}

export interface OutboxBench {
  title: string;
  database: string;
  trials: OutboxTrial[];
  table: { headers: string[]; align: string; rows: string[][] };
  problems: string[];
}

export async function runOutboxBench(
  options: OutboxBenchOptions,
  url: string,
  admin: BrokerAdmin,
  runId: string,
): Promise<OutboxBench> {
  const server = await startPostgres();
  const database =
    server.source === 'env' ? 'PostgreSQL from DATABASE_URL' : 'a private PostgreSQL on this machine (startPostgres)';
  const trials: OutboxTrial[] = [];
  try {
    for (let run = 1; run <= options.runs; run++) {
      const order = run % 2 === 1 ? MODES : [...MODES].reverse();
      for (const mode of order) {
        const tag = `${runId}.r${run}.outbox.${mode}`;
        const spec = trialSpec(url, tag, 'pubsub', {
          routingKey: 'order.placed',
          prefetch: options.prefetch,
          publishWindow: options.inFlight,
          warmup: options.warmup,
          timeoutMs: Math.max(60_000, options.n * 20),
        });
        const db = await freshDatabase({ serverUrl: server.url, prefix: 'warren_bench' });
        const trial: OutboxTrial = { run, mode, load1: os.loadavg()[0] };
        try {
          trial.result = await runTrial(
            {
              mode,
              url,
              databaseUrl: db.url,
              tag,
              exchange: spec.exchange,
              queue: spec.queue,
              routingKey: spec.routingKey,
              n: options.n,
              warmup: options.warmup,
              inFlight: options.inFlight,
              prefetch: options.prefetch,
              timeoutMs: spec.timeoutMs,
            },
            options.trialTimeoutS,
          );
        } catch (err) {
          trial.error = (err as Error).message;
        }
        await admin.cleanup(spec);
        await db.drop();
        trials.push(trial);
        const r = trial.result;
        console.log(
          `run ${run}/${options.runs}  outbox    ${mode.padEnd(16)}  ` +
            (r
              ? `${Math.round(r.ordersPerSec)} orders/s, answer p50 ${r.answerP50Ms.toFixed(1)} ms, commit → handler p50 ${r.startP50Ms.toFixed(1)} ms, p99 ${r.startP99Ms.toFixed(1)} ms${r.lost || r.duplicated ? `, ${r.lost} lost, ${r.duplicated} dup` : ''}`
              : `FAILED: ${trial.error}`),
        );
        if (options.pauseMs) await new Promise((res) => setTimeout(res, options.pauseMs));
      }
    }
  } finally {
    await server.stop();
  }
  return {
    title: `7. Outbox — ${options.n.toLocaleString('en-US')} orders, ${options.inFlight} writers at once: each a PostgreSQL transaction inserting the order, its order-placed event published after the commit or through the outbox`,
    database,
    trials,
    table: outboxTable(trials),
    problems: trials.flatMap((t) =>
      t.error
        ? [`outbox ${t.mode} run ${t.run} failed: ${t.error}`]
        : t.result!.lost || t.result!.duplicated
          ? [`outbox ${t.mode} run ${t.run}: ${t.result!.lost} lost, ${t.result!.duplicated} duplicated`]
          : [],
    ),
  };
}

function outboxTable(trials: OutboxTrial[]) {
  const median = (values: number[]) => {
    const s = [...values].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const of = (mode: OutboxMode, f: (r: OutboxResult) => number) =>
    median(trials.filter((t) => t.mode === mode && t.result).map((t) => f(t.result!)));
  const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '—');
  const direct = of('direct', (r) => r.ordersPerSec);
  return {
    headers: [
      'how the event goes out',
      'runs',
      'orders/s',
      '× direct',
      'caller waits p50 ms',
      'p99 ms',
      'commit → handler p50 ms',
      'p99 ms',
      'CPU µs/order',
    ],
    align: 'lrrrrrrrr',
    rows: MODES.map((mode) => {
      const ok = trials.filter((t) => t.mode === mode && t.result).length;
      const failed = trials.filter((t) => t.mode === mode && t.error).length;
      const rate = of(mode, (r) => r.ordersPerSec);
      return [
        OUTBOX_LABELS[mode],
        failed ? `${ok} (+${failed} failed)` : String(ok),
        Number.isFinite(rate) ? Math.round(rate).toLocaleString('en-US') : '—',
        Number.isFinite(rate / direct) ? `${(rate / direct).toFixed(2)}×` : '—',
        ms(of(mode, (r) => r.answerP50Ms)),
        ms(of(mode, (r) => r.answerP99Ms)),
        ms(of(mode, (r) => r.startP50Ms)),
        ms(of(mode, (r) => r.startP99Ms)),
        ms(of(mode, (r) => r.cpuUsPerOrder)),
      ];
    }),
  };
}

function runTrial(config: OutboxTrialConfig, timeoutS: number): Promise<OutboxResult> {
  return runTrialProcess<OutboxResult>(trialPath, config, timeoutS);
}

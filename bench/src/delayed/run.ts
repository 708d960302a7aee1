// The delayed-delivery scenario of `npm run bench` (`--delayed`): what 10 000 messages with
// random delays cost the broker — the queues the ladder adds, the broker's memory while it holds
// them, how long until every one is delivered and how late — on a fresh private broker that the
// driver starts (nestjs-warren/testing's startRabbitMQ, 127.0.0.1) and stops, so that nothing
// else on it moves the memory figures. The memory comes from the management API's node memory
// breakdown (what `rabbitmq-diagnostics memory_breakdown` prints), sampled while the trial runs.
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRabbitMQ } from 'nestjs-warren/testing';
import { namePrefix } from '../broker.js';
import { ManagementApi, type BrokerMemory } from '../management.js';
import {
  closedOnInterrupt,
  fine,
  median,
  num,
  pause,
  runTrialProcess,
  type SideBench,
  type SideContext,
} from '../side/side.js';
import { ladderNamePrefix } from './delays.js';
import type { DelayedResult, DelayedTrialConfig } from './trial.js';

const here = dirname(fileURLToPath(import.meta.url)); // bench/dist/src/delayed
const SAMPLE_MS = 200;
const SEED = 20_261_202;
const MB = 2 ** 20;
/** The reference first in each run: the ladder's own trial then starts from a broker that has held as much. */
const MODES: readonly DelayedTrialConfig['mode'][] = ['queued', 'delayed'];
/** How long the reference's messages stay in their queue: long enough for a few memory samples. */
const HOLD_MS = 2_000;

export interface DelayedOptions {
  /** Runs of this scenario: each takes the longest delay at least, so fewer than the bench's. */
  runs: number;
  n: number;
  maxDelayS: number;
  unitMs: number;
}

interface DelayedTrial {
  run: number;
  result?: DelayedResult;
  error?: string;
  queuesBefore: number;
  queuesPeak: number;
  queuesAfter: number;
  memoryBefore?: BrokerMemory;
  memoryPeak?: BrokerMemory;
  /** The highest queue_procs + binary seen: what the broker's queues hold (mem_used, an RSS, does not shrink back). */
  heldPeakBytes: number;
  /** Of the queues added, the ladder's. */
  ladderQueues: number;
  memoryAfter?: BrokerMemory;
  deleted: string[];
  mode: DelayedTrialConfig['mode'];
  /** Queues the trial's run added, by name (the ladder's, the trial's own and its dead-letter queue). */
  queuesAdded: string[];
  load1: number;
}

export async function runDelayedBench(ctx: SideContext, options: DelayedOptions): Promise<SideBench> {
  console.log('delayed: starting a fresh private RabbitMQ node (startRabbitMQ)…');
  const broker = await startRabbitMQ({ private: true });
  const trials: DelayedTrial[] = [];
  return closedOnInterrupt(
    broker,
    (b) => b.stop(),
    async () => {
      if (!broker.managementUrl) throw new Error('the private broker has no management API');
      const api = new ManagementApi(broker.managementUrl);
      const overview = await api.get<{ rabbitmq_version?: string; erlang_version?: string }>('/api/overview');
      for (let run = 1; run <= options.runs; run++) {
        for (const mode of MODES) {
          const tag = `${ctx.runId}.r${run}.delayed.${mode}`;
          const prefix = namePrefix(tag);
          const config: DelayedTrialConfig = {
            mode,
            holdMs: HOLD_MS,
            url: broker.url,
            tag,
            exchange: `${prefix}.x`,
            queue: `${prefix}.q`,
            n: options.n,
            maxDelayS: options.maxDelayS,
            unitMs: options.unitMs,
            seed: SEED,
            publishWindow: ctx.publishWindow,
            prefetch: ctx.prefetch,
            timeoutMs: Math.max(60_000, options.maxDelayS * options.unitMs * 3),
          };
          const before = new Set(await api.names('queues'));
          const added = new Set<string>();
          const trial: DelayedTrial = {
            run,
            mode,
            queuesBefore: before.size,
            queuesPeak: before.size,
            queuesAfter: 0,
            memoryBefore: await settledMemory(api),
            deleted: [],
            queuesAdded: [],
            heldPeakBytes: 0,
            ladderQueues: 0,
            load1: os.loadavg()[0],
          };
          let running = true;
          const sampler = (async () => {
            while (running) {
              const [memory, queues] = await Promise.all([api.memory(), api.names('queues')]).catch(() => [
                undefined,
                undefined,
              ]);
              if (memory && memory.usedBytes > (trial.memoryPeak?.usedBytes ?? 0)) trial.memoryPeak = memory;
              if (memory) trial.heldPeakBytes = Math.max(trial.heldPeakBytes, held(memory));
              if (queues) {
                trial.queuesPeak = Math.max(trial.queuesPeak, queues.length);
                for (const q of queues) if (!before.has(q)) added.add(q);
              }
              await pause(SAMPLE_MS);
            }
          })();
          const t0 = Date.now();
          try {
            trial.result = await runTrialProcess<DelayedResult>(join(here, 'trial.js'), config, ctx.trialTimeoutS);
          } catch (err) {
            trial.error = (err as Error).message;
          }
          running = false;
          await sampler;
          trial.queuesAdded = [...added].sort();
          trial.ladderQueues = trial.queuesAdded.filter((q) => q.startsWith(ladderNamePrefix(options.unitMs))).length;
          // The trial's own queue and exchange, the whole ladder and Warren's retry queues: the next run starts without them.
          trial.deleted = await api.deleteByPrefix([`${prefix}.`, ladderNamePrefix(options.unitMs), 'warren.retry-']);
          trial.queuesAfter = (await api.names('queues')).length;
          trial.memoryAfter = await api.memory();
          trials.push(trial);
          const r = trial.result;
          console.log(
            `run ${run}/${options.runs}  delayed        ${mode.padEnd(16)}  ` +
              (r && mode === 'queued'
                ? `queue_procs + binary ${num(held(trial.memoryBefore) / MB, 1)} → ${num(trial.heldPeakBytes / MB, 1)} MB, published in ${r.publishSeconds.toFixed(1)} s`
                : r
                  ? `queues ${trial.queuesBefore} → ${trial.queuesPeak}, broker memory ${mb(trial.memoryBefore)} → ${mb(trial.memoryPeak)} MB, ` +
                    `all delivered in ${r.deliverSeconds.toFixed(1)} s (longest delay ${r.longestDelaySeconds.toFixed(1)} s), late p50 ${fine(r.latenessP50Ms)} ms, p99 ${fine(r.latenessP99Ms)} ms, ` +
                    `early ${r.early}, lost ${r.lost}, dup ${r.duplicated}`
                  : `FAILED: ${trial.error}`) +
              `  [${((Date.now() - t0) / 1000).toFixed(1)} s]`,
          );
          if (ctx.pauseMs) await pause(ctx.pauseMs);
        }
      }
      const scaled = options.unitMs !== 1000;
      return {
        name: 'delayed',
        title:
          `11. Delayed delivery — ${options.n.toLocaleString('en-US')} persistent ~1 KB messages with random delays of 0–${options.maxDelayS} s` +
          `${scaled ? ` (a second of delay lasting ${options.unitMs} ms: delayLadder.unitMs)` : ''}, on a fresh broker`,
        table: delayedTable(trials),
        notes: [
          `RabbitMQ ${overview.rabbitmq_version ?? '?'}${overview.erlang_version ? ` (Erlang ${overview.erlang_version})` : ''}, a private node started for the scenario. ` +
            `Each run first publishes the same ${options.n.toLocaleString('en-US')} messages without a delay to a durable queue nobody consumes (amqplib, held ${HOLD_MS / 1000} s, then deleted): the reference for what the broker holds per message. ` +
            `Queues: the broker's count before the trial and its highest while the trial ran (the ladder is declared by the first delayed publish; it and Warren's retry queues are deleted after each trial). ` +
            `Broker memory, sampled every ${SAMPLE_MS} ms: \`mem_used\` (the memory alarm's figure, the node's resident set here, which does not shrink back once the messages are gone) and the breakdown's queue_procs + binary (the queues' processes with their message indexes, and message bodies): what holding the messages costs, per message. ` +
            `Lateness: arrival − (publish + delay in the ladder's time). ` +
            (scaled
              ? `The delays are scaled down ${1000 / options.unitMs}×: the ladder's queues and the messages they hold are the same as with real seconds, only their TTLs are shorter.`
              : ''),
        ],
        runs: options.runs,
        allGood: 'Every message arrived exactly once and none before its time, in every run.',
        problems: trials.flatMap((t) =>
          t.error
            ? [`delayed ${t.mode} run ${t.run} failed: ${t.error}`]
            : t.result!.lost || t.result!.duplicated || t.result!.early
              ? [
                  `delayed ${t.mode} run ${t.run}: ${t.result!.lost} lost, ${t.result!.duplicated} duplicated, ${t.result!.early} delivered early`,
                ]
              : [],
        ),
        trials,
        meta: {
          broker: { version: overview.rabbitmq_version, erlang: overview.erlang_version },
          seed: SEED,
          ...options,
        },
      };
    },
  );
}

/** The node's memory once its statistics are in (a node just started has no `mem_used` for a moment). */
async function settledMemory(api: ManagementApi): Promise<BrokerMemory> {
  for (let i = 0; ; i++) {
    const memory = await api.memory();
    if (Number.isFinite(memory.usedBytes) || i === 50) return memory;
    await pause(200);
  }
}

const MODE_LABELS: Record<DelayedTrialConfig['mode'], string> = {
  queued: 'in a plain queue (reference)',
  delayed: 'delayed through the ladder',
};

function held(memory: BrokerMemory | undefined): number {
  return memory ? memory.queueProcsBytes + memory.binaryBytes : NaN;
}

function mb(memory: BrokerMemory | undefined): string {
  return memory ? num(memory.usedBytes / MB) : '—';
}

function delayedTable(trials: DelayedTrial[]) {
  const ok = trials.filter((t) => t.result);
  const row = (label: string, ts: DelayedTrial[]) => {
    const m = (f: (t: DelayedTrial) => number) => median(ts.map(f));
    const r = (f: (r: DelayedResult) => number) => m((t) => f(t.result!));
    const peak = (t: DelayedTrial) => t.memoryPeak?.usedBytes ?? NaN;
    const before = (t: DelayedTrial) => t.memoryBefore?.usedBytes ?? NaN;
    return [
      label,
      `${num(m((t) => t.queuesBefore))} → ${num(m((t) => t.queuesPeak))} (${num(m((t) => t.ladderQueues))})`,
      `${num(m(before) / MB)} → ${num(m(peak) / MB)}`,
      `${num(m((t) => held(t.memoryBefore)) / MB, 1)} → ${num(m((t) => t.heldPeakBytes) / MB, 1)}`,
      num(m((t) => (t.heldPeakBytes - held(t.memoryBefore)) / t.result!.n)),
      num(
        r((x) => x.publishSeconds),
        1,
      ),
      `${num(
        r((x) => x.deliverSeconds),
        1,
      )} (${num(
        r((x) => x.longestDelaySeconds),
        1,
      )})`,
      fine(r((x) => x.latenessP50Ms)),
      fine(r((x) => x.latenessP99Ms)),
      fine(r((x) => x.latenessMaxMs)),
      `${ts.reduce((a, t) => a + t.result!.early, 0)}`,
      `${ts.reduce((a, t) => a + t.result!.lost, 0)}/${ts.reduce((a, t) => a + t.result!.duplicated, 0)}`,
      fine(r((x) => x.cpuUsPerMsg)),
    ];
  };
  return {
    headers: [
      'messages',
      'queues before → peak (ladder)',
      'mem_used MB before → peak',
      'queue_procs + binary MB before → peak',
      'bytes held per message',
      'publish s',
      'all delivered s (longest delay)',
      'late p50 ms',
      'p99 ms',
      'max ms',
      'early',
      'lost/dup',
      'CPU µs/msg',
    ],
    align: 'lrrrrrrrrrrrr',
    rows: MODES.flatMap((mode) => {
      const mine = ok.filter((t) => t.mode === mode);
      const name = MODE_LABELS[mode];
      return [
        ...mine.map((t) => row(`${name}, run ${t.run}`, [t])),
        ...(mine.length > 1 ? [row(`${name}, median`, mine)] : []),
        ...trials
          .filter((t) => t.mode === mode && t.error)
          .map((t) => [`${name}, run ${t.run}`, 'failed', ...Array(11).fill('—')]),
      ];
    }),
  };
}

// The memory:// scenario of `npm run bench` (`--memory-broker`): the same app on the in-memory
// broker (nestjs-warren's memory://) and on RabbitMQ (the bench's broker), interleaved run by
// run, each trial a fresh process: what a test suite gains by running its handlers' tests without
// a broker.
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { namePrefix, trialSpec, type BrokerAdmin } from '../broker.js';
import { fine, median, num, pause, runTrialProcess, type SideBench, type SideContext } from '../side/side.js';
import type { MemoryBrokerResult, MemoryBrokerTrialConfig, MemoryBrokerVariant } from './trial.js';

const here = dirname(fileURLToPath(import.meta.url)); // bench/dist/src/memory-broker
const VARIANTS: readonly MemoryBrokerVariant[] = ['rabbitmq', 'memory'];
const LABELS: Record<MemoryBrokerVariant, string> = {
  rabbitmq: 'RabbitMQ (the bench’s broker)',
  memory: 'memory:// (in-process broker)',
};

interface MemoryBrokerTrial {
  run: number;
  variant: MemoryBrokerVariant;
  load1: number;
  result?: MemoryBrokerResult;
  error?: string;
}

export async function runMemoryBrokerBench(ctx: SideContext, admin: BrokerAdmin, rounds: number): Promise<SideBench> {
  const trials: MemoryBrokerTrial[] = [];
  for (let run = 1; run <= ctx.runs; run++) {
    for (const variant of run % 2 ? VARIANTS : [...VARIANTS].reverse()) {
      const tag = `${ctx.runId}.r${run}.memory-broker.${variant}`;
      // The names the driver's clean-up deletes on RabbitMQ after the trial.
      const spec = trialSpec(ctx.url, tag, 'rpc-seq', {
        prefetch: ctx.prefetch,
        publishWindow: 1,
        warmup: 0,
        timeoutMs: 0,
      });
      const config: MemoryBrokerTrialConfig = {
        variant,
        url: variant === 'memory' ? `memory://${namePrefix(tag)}` : ctx.url,
        tag,
        exchange: spec.exchange,
        queue: spec.queue,
        rpcQueue: spec.rpcQueue,
        rounds,
      };
      const trial: MemoryBrokerTrial = { run, variant, load1: os.loadavg()[0] };
      try {
        trial.result = await runTrialProcess<MemoryBrokerResult>(join(here, 'trial.js'), config, ctx.trialTimeoutS);
      } catch (err) {
        trial.error = (err as Error).message;
      }
      if (variant === 'rabbitmq') await admin.cleanup(spec);
      trials.push(trial);
      const r = trial.result;
      console.log(
        `run ${run}/${ctx.runs}  memory-broker  ${variant.padEnd(16)}  ` +
          (r
            ? `boot ${fine(r.bootMs)} ms, RPC p50 ${fine(r.rpcP50Ms)} ms, p99 ${fine(r.rpcP99Ms)} ms, event p50 ${fine(r.eventP50Ms)} ms, p99 ${fine(r.eventP99Ms)} ms, close ${fine(r.closeMs)} ms, process ${num(r.totalMs)} ms`
            : `FAILED: ${trial.error}`),
      );
      if (ctx.pauseMs) await pause(ctx.pauseMs);
    }
  }
  const of = (variant: MemoryBrokerVariant, f: (r: MemoryBrokerResult) => number) =>
    median(trials.filter((t) => t.variant === variant && t.result).map((t) => f(t.result!)));
  const rows = VARIANTS.map((variant) => {
    const ok = trials.filter((t) => t.variant === variant && t.result).length;
    const failed = trials.filter((t) => t.variant === variant && t.error).length;
    const x = (f: (r: MemoryBrokerResult) => number) => of(variant, f);
    return [
      LABELS[variant],
      fine(x((r) => r.bootMs)),
      fine(x((r) => r.rpcP50Ms)),
      fine(x((r) => r.rpcP99Ms)),
      num(x((r) => r.rpcTotalMs)),
      fine(x((r) => r.eventP50Ms)),
      fine(x((r) => r.eventP99Ms)),
      num(x((r) => r.eventTotalMs)),
      fine(x((r) => r.closeMs)),
      num(x((r) => r.totalMs - r.importMs)),
      num(x((r) => r.totalMs)),
      num(x((r) => r.cpuMs)),
      failed ? `${ok} (+${failed} failed)` : String(ok),
    ];
  });
  const gain = (f: (r: MemoryBrokerResult) => number) => of('rabbitmq', f) / of('memory', f);
  return {
    name: 'memory-broker',
    title: `12. memory:// against RabbitMQ — one app (a @Subscribe handler, an @RpcHandler) booted, ${rounds.toLocaleString('en-US')} RPC calls and ${rounds.toLocaleString('en-US')} events each awaited until handled, closed`,
    table: {
      headers: [
        'broker',
        'boot ms',
        'RPC p50 ms',
        'p99 ms',
        `${rounds} calls ms`,
        'event p50 ms',
        'p99 ms',
        `${rounds} events ms`,
        'close ms',
        'boot → closed ms',
        'process start → closed ms',
        'CPU ms',
        'runs',
      ],
      align: 'lrrrrrrrrrrrr',
      rows,
    },
    notes: [
      `On memory:// the same app, from boot to close, took ${num(
        gain((r) => r.totalMs - r.importMs),
        1,
      )}× less time than on RabbitMQ (boot ${num(
        gain((r) => r.bootMs),
        1,
      )}×, an RPC round trip ${num(
        gain((r) => r.rpcP50Ms),
        1,
      )}×, an event ${num(
        gain((r) => r.eventP50Ms),
        1,
      )}×, closing ${num(
        gain((r) => r.closeMs),
        1,
      )}×). ` +
        'Module loading (NestJS, Warren) is the same for both and is in "process start → closed" only. The RabbitMQ figures include its network round trips on 127.0.0.1 and the broker\'s CPU, which the trial\'s CPU column does not.',
    ],
    allGood: 'Every call got its own reply and every event was handled in every run.',
    problems: trials.flatMap((t) => (t.error ? [`memory-broker ${t.variant} run ${t.run} failed: ${t.error}`] : [])),
    trials,
  };
}

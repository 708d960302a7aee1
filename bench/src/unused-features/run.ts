// The unused-features scenario of `npm run bench` (`--unused-features`, issue 18's "no figure may
// get worse when enhancers, OpenTelemetry (without an SDK), schema validation or named
// connections are merely available but unused by a handler"): the matrix's Warren app against
// the same app with those features, interleaved, on the matrix's three workloads and sizes.
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trialSpec, type BrokerAdmin, type Cleanup } from '../broker.js';
import type { PubsubResult, RpcResult } from '../harness.js';
import { fine, num, pause, runTrialProcess, type SideBench, type SideContext } from '../side/side.js';
import { unusedTable, type UnusedTrial } from './figures.js';
import type { UnusedTrialConfig, UnusedTrialOutput } from './trial.js';
import {
  IDLE_QUEUES,
  OTHER_CONNECTION,
  UNUSED_LABELS,
  UNUSED_VARIANTS,
  UNUSED_WORKLOADS,
  wiringProblems,
  type UnusedWorkload,
} from './variants.js';

const here = dirname(fileURLToPath(import.meta.url)); // bench/dist/src/unused-features

export interface UnusedSizes {
  pubsub: number;
  rpcSeq: number;
  rpcConc: number;
  inFlight: number;
}

type Trial = UnusedTrial & { output?: UnusedTrialOutput; cleanup?: Cleanup };

export async function runUnusedFeaturesBench(
  ctx: SideContext,
  admin: BrokerAdmin,
  sizes: UnusedSizes,
): Promise<SideBench> {
  const n: Record<UnusedWorkload, number> = {
    pubsub: sizes.pubsub,
    'rpc-seq': sizes.rpcSeq,
    'rpc-conc': sizes.rpcConc,
  };
  const trials: Trial[] = [];
  for (let run = 1; run <= ctx.runs; run++) {
    for (const workload of UNUSED_WORKLOADS) {
      const shift = (run - 1) % UNUSED_VARIANTS.length;
      for (const variant of [...UNUSED_VARIANTS.slice(shift), ...UNUSED_VARIANTS.slice(0, shift)]) {
        const spec = trialSpec(ctx.url, `${ctx.runId}.r${run}.unused.${workload}.${variant}`, workload, {
          prefetch: ctx.prefetch,
          publishWindow: ctx.publishWindow,
          warmup: workload === 'pubsub' ? ctx.warmupEvents : ctx.warmupCalls,
          timeoutMs: Math.max(60_000, sizes.pubsub * 5),
          // Both apps' trials delete the featured app's idle queues: the clean-up is the same for both.
          handlers: IDLE_QUEUES,
        });
        const config: UnusedTrialConfig = { system: 'warren', variant, spec, n: n[workload], inFlight: sizes.inFlight };
        const trial: Trial = { run, workload, variant, load1: os.loadavg()[0] };
        const t0 = Date.now();
        try {
          trial.output = await runTrialProcess<UnusedTrialOutput>(join(here, 'trial.js'), config, ctx.trialTimeoutS);
        } catch (err) {
          trial.error = (err as Error).message;
        }
        trial.cleanup = await admin.cleanup(spec);
        trials.push(trial);
        console.log(
          `run ${run}/${ctx.runs}  unused-features  ${workload.padEnd(8)}  ${variant.padEnd(8)}  ${describe(trial)}  [${((Date.now() - t0) / 1000).toFixed(1)} s]`,
        );
        if (ctx.pauseMs) await pause(ctx.pauseMs);
      }
    }
  }
  return {
    name: 'unused-features',
    title:
      `13. Unused features — the matrix's Warren app (${num(sizes.pubsub)} pub/sub messages, ${num(sizes.rpcSeq)} sequential calls, ` +
      `${num(sizes.rpcConc)} calls ${sizes.inFlight} in flight), plain or with enhancers, schemas, @opentelemetry/api and a named connection that its handlers do not use`,
    table: unusedTable(trials, sizes.inFlight),
    notes: [
      `The plain app is the matrix's \`warren\` system, in a process that cannot import @opentelemetry/api. ` +
        `The featured app has the same measured handler and, besides it, @opentelemetry/api importable with no SDK registered; ` +
        `two handlers on queues of their own with a guard, an interceptor, a pipe and a filter (by class, none global); ` +
        `two handlers of contracts with a zod schema; and a second connection (\`forRoot({ connection: '${OTHER_CONNECTION}' })\`, two more AMQP connections) with two handlers. ` +
        `No message reaches the idle handlers. Each trial checked what its app had wired (describeTopology) and whether the API could be imported. ` +
        `featured ÷ plain: for a "higher" figure above 1.00× is better, for a "lower" one below.`,
    ],
    problems: problemsOf(trials),
    allGood:
      'Every message arrived exactly once and every call got its own reply; every app had what its variant says, in every run.',
    trials,
  };
}

function describe(trial: Trial): string {
  if (!trial.output) return `FAILED: ${trial.error}`;
  const r = trial.output.result as PubsubResult | RpcResult;
  return r.kind === 'pubsub'
    ? `${num(r.msgsPerSec)} msgs/s, e2e p50 ${fine(r.e2eP50Ms)} ms, CPU ${fine(r.cpuUsPerMsg)} µs/msg, lost ${r.lost}, dup ${r.duplicated}`
    : `${num(r.callsPerSec)} calls/s, p50 ${fine(r.p50Ms)} ms, CPU ${fine(r.cpuUsPerCall)} µs/call${r.failed || r.wrongReplies ? `, ${r.failed} failed, ${r.wrongReplies} wrong` : ''}`;
}

function problemsOf(trials: Trial[]): string[] {
  const out: string[] = [];
  for (const t of trials) {
    const where = `unused-features / ${UNUSED_LABELS[t.variant]} / ${t.workload} run ${t.run}`;
    if (!t.output) {
      out.push(`${where} failed: ${t.error}`);
      continue;
    }
    const r = t.output.result as PubsubResult | RpcResult;
    if (r.kind === 'pubsub' && (r.lost || r.duplicated || r.unexpected))
      out.push(`${where}: ${r.lost} lost, ${r.duplicated} duplicated, ${r.unexpected} unexpected`);
    if (r.kind === 'rpc' && (r.failed || r.wrongReplies))
      out.push(
        `${where}: ${r.failed} failed, ${r.wrongReplies} wrong replies${r.firstError ? ` (${r.firstError})` : ''}`,
      );
    for (const p of wiringProblems(t.variant, t.output.wiring)) out.push(`${where}: ${p}`);
    if (t.cleanup?.leftInQueue) out.push(`${where}: ${t.cleanup.leftInQueue} message(s) left in the queue`);
    if (t.cleanup?.residue.length) out.push(`${where}: left on the broker (deleted): ${t.cleanup.residue.join(', ')}`);
  }
  return out;
}

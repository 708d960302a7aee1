// A pub/sub comparison between a few variants (a batch handler against single messages, a
// service queue against eight queues, a quorum queue against a classic one): every run gives
// each variant one trial, in an order that rotates from run to run, each trial a fresh process
// running the harness's pub/sub measurement (harness.ts: every id must arrive exactly once) on
// names of its own, which the driver deletes afterwards.
import os from 'node:os';
import { trialSpec, type BrokerAdmin, type Cleanup } from '../broker.js';
import type { Adapter, BrokerSpec, PubsubResult } from '../harness.js';
import {
  fine,
  median,
  num,
  pause,
  ratio,
  reportResult,
  runTrialProcess,
  trialFailed,
  type SideContext,
  type SideTable,
} from './side.js';

export interface PubsubTrialConfig<V extends string = string> {
  variant: V;
  spec: BrokerSpec;
  n: number;
}

export interface PubsubTrialOutput {
  result: PubsubResult;
  /** What the trial adds to the harness's figures (e.g. messages a wrong handler got). */
  extra: Record<string, number>;
  maxRssMb: number;
}

export interface PubsubTrial<V extends string = string> {
  run: number;
  variant: V;
  load1: number;
  output?: PubsubTrialOutput;
  error?: string;
  cleanup?: Cleanup;
  /** Whatever the scenario notes about the trial (the cluster: which node held the queue). */
  note?: string;
}

export interface PubsubMatrixOptions<V extends string> {
  /** The scenario's name: part of every trial's names. */
  name: string;
  variants: readonly V[];
  labels: Record<V, string>;
  /** The variant the "×" columns divide by. */
  reference: V;
  trialPath: string;
  n: number;
  /** Per variant: the spec's changes (handler queues to clean up, a prefetch, …). */
  spec?: (variant: V, spec: BrokerSpec) => BrokerSpec;
  /** Extra figures of `PubsubTrialOutput.extra` that must be 0 in every trial, named for the problems. */
  mustBeZero?: Record<string, string>;
  /** Runs after each trial, before the clean-up deletes what it declared. */
  beforeCleanup?: (trial: PubsubTrial<V>, spec: BrokerSpec) => Promise<void>;
}

export async function runPubsubMatrix<V extends string>(
  options: PubsubMatrixOptions<V>,
  ctx: SideContext,
  admin: BrokerAdmin,
  url = ctx.url,
): Promise<{ trials: PubsubTrial<V>[]; table: SideTable; problems: string[] }> {
  const trials: PubsubTrial<V>[] = [];
  const variants = options.variants;
  for (let run = 1; run <= ctx.runs; run++) {
    const shift = (run - 1) % variants.length;
    for (const variant of [...variants.slice(shift), ...variants.slice(0, shift)]) {
      const tag = `${ctx.runId}.r${run}.${options.name}.${variant}`;
      const base = trialSpec(url, tag, 'pubsub', {
        prefetch: ctx.prefetch,
        publishWindow: ctx.publishWindow,
        warmup: Math.min(ctx.warmupEvents, options.n),
        timeoutMs: Math.max(60_000, options.n * 5),
      });
      const spec = options.spec ? options.spec(variant, base) : base;
      const trial: PubsubTrial<V> = { run, variant, load1: os.loadavg()[0] };
      const config: PubsubTrialConfig<V> = { variant, spec, n: options.n };
      const t0 = Date.now();
      try {
        trial.output = await runTrialProcess<PubsubTrialOutput>(options.trialPath, config, ctx.trialTimeoutS);
      } catch (err) {
        trial.error = (err as Error).message;
      }
      await options.beforeCleanup?.(trial, spec).catch((err: Error) => {
        trial.error ??= err.message;
      });
      trial.cleanup = await admin.cleanup(spec);
      trials.push(trial);
      const r = trial.output?.result;
      const extra = Object.entries(trial.output?.extra ?? {})
        .map(([k, v]) => `, ${k} ${num(v)}`)
        .join('');
      console.log(
        `run ${run}/${ctx.runs}  ${options.name.padEnd(13)}  ${variant.padEnd(16)}  ` +
          (r
            ? `${num(r.msgsPerSec)} msgs/s, lost ${r.lost}, dup ${r.duplicated}, e2e p50 ${fine(r.e2eP50Ms)} ms, CPU ${fine(r.cpuUsPerMsg)} µs/msg${extra}`
            : `FAILED: ${trial.error}`) +
          `  [${((Date.now() - t0) / 1000).toFixed(1)} s]`,
      );
      if (ctx.pauseMs) await pause(ctx.pauseMs);
    }
  }
  return { trials, table: matrixTable(options, trials), problems: matrixProblems(options, trials) };
}

function matrixTable<V extends string>(options: PubsubMatrixOptions<V>, trials: PubsubTrial<V>[]): SideTable {
  const of = (variant: V, f: (r: PubsubResult) => number) =>
    trials.filter((t) => t.variant === variant && t.output).map((t) => f(t.output!.result));
  const ref = (f: (r: PubsubResult) => number) => median(of(options.reference, f));
  const refRate = ref((r) => r.msgsPerSec);
  const refCpu = ref((r) => r.cpuUsPerMsg);
  const rows = options.variants.map((variant) => {
    const mine = trials.filter((t) => t.variant === variant);
    const ok = mine.filter((t) => t.output);
    const rates = of(variant, (r) => r.msgsPerSec);
    const rate = median(rates);
    const cpu = median(of(variant, (r) => r.cpuUsPerMsg));
    const sum = (f: (r: PubsubResult) => number) => ok.reduce((a, t) => a + f(t.output!.result), 0);
    return [
      options.labels[variant],
      num(rate),
      ratio(rate, refRate),
      rates.length ? `${num(Math.min(...rates))}–${num(Math.max(...rates))}` : '—',
      `${sum((r) => r.lost)}/${sum((r) => r.duplicated)}`,
      fine(median(of(variant, (r) => r.e2eP50Ms))),
      fine(cpu),
      ratio(cpu, refCpu),
      num(median(ok.map((t) => t.output!.maxRssMb))),
      mine.length > ok.length ? `${ok.length} (+${mine.length - ok.length} failed)` : String(ok.length),
    ];
  });
  return {
    headers: [
      'variant',
      'msgs/s',
      '× first',
      'min–max',
      'lost/dup',
      'e2e p50 ms',
      'CPU µs/msg',
      '× first',
      'peak RSS MB',
      'runs',
    ],
    align: 'lrrrrrrrrr',
    rows,
  };
}

function matrixProblems<V extends string>(options: PubsubMatrixOptions<V>, trials: PubsubTrial<V>[]): string[] {
  const out: string[] = [];
  for (const t of trials) {
    const where = `${options.name} / ${options.labels[t.variant]} run ${t.run}`;
    if (t.error) {
      out.push(`${where} failed: ${t.error}`);
      continue;
    }
    const r = t.output!.result;
    if (r.lost || r.duplicated || r.unexpected)
      out.push(`${where}: ${r.lost} lost, ${r.duplicated} duplicated, ${r.unexpected} unexpected`);
    for (const [key, what] of Object.entries(options.mustBeZero ?? {}))
      if (t.output!.extra[key]) out.push(`${where}: ${t.output!.extra[key]} ${what}`);
    if (t.cleanup?.leftInQueue) out.push(`${where}: ${t.cleanup.leftInQueue} message(s) left in the queue`);
    if (t.cleanup?.residue.length) out.push(`${where}: left on the broker (deleted): ${t.cleanup.residue.join(', ')}`);
  }
  return out;
}

/**
 * The body of a trial process: the adapter `load` gives, set up on the spec, one pub/sub
 * measurement, torn down; the result on stdout.
 */
export function pubsubTrialMain<V extends string>(
  load: (config: PubsubTrialConfig<V>) => Promise<Adapter & { extra?(): Record<string, number> }>,
): void {
  const run = async () => {
    const config = JSON.parse(process.argv[2] ?? '') as PubsubTrialConfig<V>;
    const adapter = await load(config);
    await adapter.setup(config.spec);
    const result = await adapter.pubsub(config.n);
    const extra = adapter.extra?.() ?? {};
    await adapter.teardown();
    const output: PubsubTrialOutput = { result, extra, maxRssMb: process.resourceUsage().maxRSS / 1024 };
    reportResult(output);
  };
  run().catch(trialFailed);
}

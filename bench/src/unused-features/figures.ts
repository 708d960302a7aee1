// The unused-features scenario's table: one row per figure of the matrix's workloads, the plain
// app's median and the featured app's, and their ratio.
import type { PubsubResult, RpcResult } from '../harness.js';
import { fine, median, num, ratio, type SideTable } from '../side/side.js';
import type { TrialOutput } from '../systems.js';
import { UNUSED_VARIANTS, type UnusedVariant, type UnusedWorkload } from './variants.js';

export interface UnusedTrial {
  run: number;
  workload: UnusedWorkload;
  variant: UnusedVariant;
  load1: number;
  output?: TrialOutput;
  error?: string;
}

/** A pub/sub or an RPC result, read by figures that each know which of the two they read. */
type AnyResult = Omit<PubsubResult, 'kind'> & Omit<RpcResult, 'kind'>;

interface Figure {
  label: (inFlight: number) => string;
  workload: UnusedWorkload;
  better: 'higher' | 'lower';
  of: (result: AnyResult) => number;
  /** How the value is written: a rate as a whole number, the rest with the decimals its size deserves. */
  format: (v: number) => string;
}

const rate = (v: number) => num(v);

export const FIGURES: readonly Figure[] = [
  { label: () => 'pub/sub msgs/s', workload: 'pubsub', better: 'higher', of: (r) => r.msgsPerSec, format: rate },
  { label: () => 'pub/sub e2e p50 ms', workload: 'pubsub', better: 'lower', of: (r) => r.e2eP50Ms, format: fine },
  { label: () => 'pub/sub CPU µs/msg', workload: 'pubsub', better: 'lower', of: (r) => r.cpuUsPerMsg, format: fine },
  { label: () => 'RPC sequential p50 ms', workload: 'rpc-seq', better: 'lower', of: (r) => r.p50Ms, format: fine },
  {
    label: () => 'RPC sequential CPU µs/call',
    workload: 'rpc-seq',
    better: 'lower',
    of: (r) => r.cpuUsPerCall,
    format: fine,
  },
  {
    label: (k) => `RPC ${k} in flight calls/s`,
    workload: 'rpc-conc',
    better: 'higher',
    of: (r) => r.callsPerSec,
    format: rate,
  },
  {
    label: (k) => `RPC ${k} in flight p50 ms`,
    workload: 'rpc-conc',
    better: 'lower',
    of: (r) => r.p50Ms,
    format: fine,
  },
  {
    label: (k) => `RPC ${k} in flight CPU µs/call`,
    workload: 'rpc-conc',
    better: 'lower',
    of: (r) => r.cpuUsPerCall,
    format: fine,
  },
  {
    label: (k) => `RPC ${k} in flight heap MB`,
    workload: 'rpc-conc',
    better: 'lower',
    of: (r) => r.heapMb,
    format: fine,
  },
];

/** Every finished trial's value of `figure`, for one variant. */
function valuesOf(trials: UnusedTrial[], figure: Figure, variant: UnusedVariant): number[] {
  return trials
    .filter((t) => t.variant === variant && t.workload === figure.workload && t.output)
    .map((t) => figure.of(t.output!.result as unknown as AnyResult))
    .filter((v) => Number.isFinite(v));
}

export function unusedTable(trials: UnusedTrial[], inFlight: number): SideTable {
  const rows = FIGURES.map((figure) => {
    const [plain, featured] = UNUSED_VARIANTS.map((v) => valuesOf(trials, figure, v));
    const range = (vs: number[]) =>
      vs.length ? `${figure.format(Math.min(...vs))}–${figure.format(Math.max(...vs))}` : '—';
    return [
      figure.label(inFlight),
      figure.better,
      figure.format(median(plain)),
      figure.format(median(featured)),
      ratio(median(featured), median(plain)),
      range(plain),
      range(featured),
      `${plain.length}/${featured.length}`,
    ];
  });
  return {
    headers: ['figure', 'better', 'plain', 'featured', 'featured ÷ plain', 'plain min–max', 'featured min–max', 'runs'],
    align: 'llrrrrrr',
    rows,
  };
}

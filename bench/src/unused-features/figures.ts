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
  workload: UnusedWorkload;
  better: 'higher' | 'lower';
  /** `{k}` stands for the calls in flight. */
  label: string;
  of: (result: AnyResult) => number;
  /** A rate as a whole number, the rest with the decimals its size deserves. */
  format: (v: number) => string;
}

const fig = (
  workload: UnusedWorkload,
  better: Figure['better'],
  label: string,
  of: Figure['of'],
  format: Figure['format'] = fine,
): Figure => ({ workload, better, label, of, format });

export const FIGURES: readonly Figure[] = [
  fig('pubsub', 'higher', 'pub/sub msgs/s', (r) => r.msgsPerSec, num),
  fig('pubsub', 'lower', 'pub/sub e2e p50 ms', (r) => r.e2eP50Ms),
  fig('pubsub', 'lower', 'pub/sub CPU µs/msg', (r) => r.cpuUsPerMsg),
  fig('rpc-seq', 'lower', 'RPC sequential p50 ms', (r) => r.p50Ms),
  fig('rpc-seq', 'lower', 'RPC sequential CPU µs/call', (r) => r.cpuUsPerCall),
  fig('rpc-conc', 'higher', 'RPC {k} in flight calls/s', (r) => r.callsPerSec, num),
  fig('rpc-conc', 'lower', 'RPC {k} in flight p50 ms', (r) => r.p50Ms),
  fig('rpc-conc', 'lower', 'RPC {k} in flight CPU µs/call', (r) => r.cpuUsPerCall),
  fig('rpc-conc', 'lower', 'RPC {k} in flight heap MB', (r) => r.heapMb),
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
      figure.label.replace('{k}', String(inFlight)),
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

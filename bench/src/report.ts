// Medians, spreads and ratios to raw amqplib, as console and Markdown tables.
import type { BootResult, PubsubResult, RpcResult, Scenario } from './harness.js';
import type { Cleanup } from './broker.js';
import { label, LABELS, REFERENCE, SYSTEMS, type SystemName, type TrialOutput } from './systems.js';

export interface Trial {
  run: number;
  scenario: Scenario;
  system: SystemName;
  /** Position of the system in this run's order (the order rotates from run to run). */
  position: number;
  wallMs: number;
  /** The machine's 1-minute load average just before the trial (other work shows up here). */
  load1: number;
  output?: TrialOutput;
  error?: string;
  cleanup?: Cleanup;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  /** (max − min) / median, in percent. */
  spreadPct: number;
  values: number[];
  /** This median ÷ the reference's median (raw amqplib on two connections). */
  vsRaw?: number;
}

export interface SystemSummary {
  system: SystemName;
  label: string;
  runs: number;
  failedRuns: number;
  errors: string[];
  metrics: Record<string, Stat>;
  /** Pub/sub: summed over runs; must be 0. */
  lost: number;
  duplicated: number;
  unexpected: number;
  leftInQueue: number;
  /** RPC: summed over runs; must be 0. */
  wrongReplies: number;
  failedCalls: number;
  /** Boot: handlers that got another handler's message, summed over runs; must be 0. */
  misrouted: number;
  residue: string[];
  setupMs: Stat;
  rssMb: Stat;
  maxRssMb: Stat;
}

export interface ScenarioSummary {
  scenario: Scenario;
  title: string;
  systems: SystemSummary[];
}

const METRICS: Record<Scenario, string[]> = {
  pubsub: ['msgsPerSec', 'publishSeconds', 'e2eP50Ms', 'e2eP99Ms', 'cpuUsPerMsg'],
  store: ['msgsPerSec', 'publishSeconds', 'e2eP50Ms', 'e2eP99Ms', 'cpuUsPerMsg'],
  'rpc-seq': ['p50Ms', 'p99Ms', 'meanMs', 'callsPerSec', 'cpuUsPerCall', 'heapMb', 'heapPeakMb'],
  'rpc-conc': ['callsPerSec', 'p50Ms', 'p99Ms', 'meanMs', 'cpuUsPerCall', 'heapMb', 'heapPeakMb'],
  boot: ['setupMs', 'firstDeliveryMs', 'sinceProcessStartMs', 'rssMb', 'heapUsedMb', 'cpuSetupMs', 'cpuToReadyMs'],
};

export function summarize(trials: Trial[], scenario: Scenario, systems: SystemName[], title: string): ScenarioSummary {
  const summaries: SystemSummary[] = [];
  for (const system of systems) {
    const mine = trials.filter((t) => t.scenario === scenario && t.system === system);
    if (mine.length === 0) continue;
    const ok = mine.filter((t) => t.output);
    type AnyResult = Partial<Omit<PubsubResult, 'kind'>> &
      Partial<Omit<RpcResult, 'kind'>> &
      Partial<Omit<BootResult, 'kind' | 'rssMb'>>;
    const results = ok.map((t) => t.output!.result as AnyResult);
    const metrics: Record<string, Stat> = {};
    for (const key of METRICS[scenario]) metrics[key] = stat(results.map((r) => r[key as keyof typeof r] as number));
    const sum = (f: (r: AnyResult) => number | undefined) => results.reduce((a, r) => a + (f(r) ?? 0), 0);
    summaries.push({
      system,
      label: label(system, scenario),
      runs: ok.length,
      failedRuns: mine.length - ok.length,
      errors: mine.filter((t) => t.error).map((t) => `run ${t.run}: ${t.error}`),
      metrics,
      lost: sum((r) => r.lost),
      duplicated: sum((r) => r.duplicated),
      unexpected: sum((r) => r.unexpected),
      leftInQueue: mine.reduce((a, t) => a + (t.cleanup?.leftInQueue ?? 0), 0),
      wrongReplies: sum((r) => r.wrongReplies),
      failedCalls: sum((r) => r.failed),
      misrouted: sum((r) => r.misrouted),
      residue: mine.flatMap((t) => t.cleanup?.residue ?? []),
      setupMs: stat(ok.map((t) => t.output!.setupMs)),
      rssMb: stat(ok.map((t) => t.output!.rssMb)),
      maxRssMb: stat(ok.map((t) => t.output!.maxRssMb)),
    });
  }
  const raw = summaries.find((s) => s.system === REFERENCE);
  if (raw) {
    for (const s of summaries) {
      const stats: [Stat, Stat | undefined][] = Object.entries(s.metrics).map(([k, v]) => [v, raw.metrics[k]]);
      stats.push([s.maxRssMb, raw.maxRssMb]);
      for (const [value, base] of stats) {
        if (base?.median && Number.isFinite(value.median)) value.vsRaw = value.median / base.median;
      }
    }
  }
  return { scenario, title, systems: summaries };
}

function stat(values: number[]): Stat {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { median: NaN, min: NaN, max: NaN, spreadPct: NaN, values };
  const median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  return {
    median,
    min: sorted[0],
    max: sorted[n - 1],
    spreadPct: ((sorted[n - 1] - sorted[0]) / median) * 100,
    values,
  };
}

// ---- formatting ------------------------------------------------------------------------------

function num(v: number, digits = 0): string {
  if (!Number.isFinite(v)) return '—';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ms(v: number): string {
  if (!Number.isFinite(v)) return '—';
  return v < 10 ? num(v, 2) : v < 100 ? num(v, 1) : num(v, 0);
}

/** CPU time per message or call, in µs. */
function us(v: number): string {
  return Number.isFinite(v) && v < 100 ? num(v, 1) : num(v, 0);
}

function ratio(s: Stat): string {
  return s.vsRaw === undefined ? '—' : `${s.vsRaw.toFixed(2)}×`;
}

function range(s: Stat, f: (v: number) => string): string {
  return Number.isFinite(s.min) ? `${f(s.min)}–${f(s.max)}` : '—';
}

function spread(s: Stat): string {
  return Number.isFinite(s.spreadPct) ? `${s.spreadPct.toFixed(0)}%` : '—';
}

function runs(s: SystemSummary): string {
  return s.failedRuns ? `${s.runs} (+${s.failedRuns} failed)` : String(s.runs);
}

interface Table {
  headers: string[];
  /** 'l' or 'r' per column. */
  align: string;
  rows: string[][];
}

export function table(summary: ScenarioSummary): Table {
  const rows: string[][] = [];
  switch (summary.scenario) {
    case 'store':
    case 'pubsub':
      for (const s of summary.systems) {
        const m = s.metrics.msgsPerSec;
        rows.push([
          s.label,
          num(m.median),
          ratio(m),
          range(m, (v) => num(v)),
          spread(m),
          `${s.lost}/${s.duplicated}`,
          ms(s.metrics.e2eP50Ms.median),
          us(s.metrics.cpuUsPerMsg.median),
          ratio(s.metrics.cpuUsPerMsg),
          runs(s),
        ]);
      }
      return {
        headers: [
          'system',
          'msgs/s',
          '× raw',
          'min–max',
          'spread',
          'lost/dup',
          'e2e p50 ms',
          'CPU µs/msg',
          '× raw',
          'runs',
        ],
        align: 'lrrrrrrrrr',
        rows,
      };
    case 'rpc-seq':
      for (const s of summary.systems) {
        const { p50Ms, p99Ms, callsPerSec, cpuUsPerCall } = s.metrics;
        rows.push([
          s.label,
          ms(p50Ms.median),
          ratio(p50Ms),
          range(p50Ms, ms),
          ms(p99Ms.median),
          ratio(p99Ms),
          num(callsPerSec.median),
          ratio(callsPerSec),
          us(cpuUsPerCall.median),
          ratio(cpuUsPerCall),
          runs(s),
        ]);
      }
      return {
        headers: [
          'system',
          'p50 ms',
          '× raw',
          'p50 min–max',
          'p99 ms',
          '× raw',
          'calls/s',
          '× raw',
          'CPU µs/call',
          '× raw',
          'runs',
        ],
        align: 'lrrrrrrrrrr',
        rows,
      };
    case 'rpc-conc':
      for (const s of summary.systems) {
        const { callsPerSec, p99Ms, cpuUsPerCall } = s.metrics;
        rows.push([
          s.label,
          num(callsPerSec.median),
          ratio(callsPerSec),
          range(callsPerSec, (v) => num(v)),
          spread(callsPerSec),
          ms(p99Ms.median),
          ratio(p99Ms),
          us(cpuUsPerCall.median),
          ratio(cpuUsPerCall),
          runs(s),
        ]);
      }
      return {
        headers: ['system', 'calls/s', '× raw', 'min–max', 'spread', 'p99 ms', '× raw', 'CPU µs/call', '× raw', 'runs'],
        align: 'lrrrrrrrrr',
        rows,
      };
    case 'boot':
      for (const s of summary.systems) {
        const { setupMs, firstDeliveryMs, sinceProcessStartMs, cpuSetupMs, cpuToReadyMs } = s.metrics;
        rows.push([
          s.label,
          num(setupMs.median),
          ratio(setupMs),
          range(setupMs, (v) => num(v)),
          num(firstDeliveryMs.median),
          num(sinceProcessStartMs.median),
          ratio(sinceProcessStartMs),
          num(cpuSetupMs.median),
          ratio(cpuSetupMs),
          num(cpuToReadyMs.median),
          ratio(cpuToReadyMs),
          `${s.lost}/${s.duplicated}/${s.misrouted}`,
          runs(s),
        ]);
      }
      return {
        headers: [
          'system',
          'setup ms',
          '× raw',
          'min–max',
          'first delivery ms',
          'process start → ready ms',
          '× raw',
          'setup CPU ms',
          '× raw',
          'CPU to ready ms',
          '× raw',
          'lost/dup/misrouted',
          'runs',
        ],
        align: 'lrrrrrrrrrrrr',
        rows,
      };
  }
}

/**
 * Memory, from the trials of the other scenarios: the process's peak resident set during the
 * pub/sub and RPC throughput trials, and the resident set and V8 heap once booted with the boot
 * scenario's handlers (after a GC).
 */
export function memoryTable(summaries: ScenarioSummary[]): Table | undefined {
  const of = (scenario: Scenario) => summaries.find((s) => s.scenario === scenario)?.systems ?? [];
  const systems = SYSTEMS.filter((system) => summaries.some((s) => s.systems.some((x) => x.system === system)));
  if (systems.length === 0) return undefined;
  const cell = (s: Stat | undefined) => (s ? num(s.median) : '—');
  const r = (s: Stat | undefined) => (s ? ratio(s) : '—');
  const rawHeap = of('rpc-conc').find((s) => s.system === REFERENCE)?.metrics.heapMb?.median;
  // The heap target is an allowance over raw amqplib's heap in MB, not a ratio.
  const overRaw = (s: Stat | undefined) =>
    s && rawHeap !== undefined && Number.isFinite(s.median)
      ? `${s.median - rawHeap >= 0 ? '+' : ''}${(s.median - rawHeap).toFixed(1)}`
      : '—';
  const rows = systems.map((system) => {
    const pub = of('pubsub').find((s) => s.system === system);
    const rpc = of('rpc-conc').find((s) => s.system === system);
    const boot = of('boot').find((s) => s.system === system);
    return [
      LABELS[system],
      cell(pub?.maxRssMb),
      r(pub?.maxRssMb),
      cell(rpc?.maxRssMb),
      r(rpc?.maxRssMb),
      cell(rpc?.metrics.heapMb),
      overRaw(rpc?.metrics.heapMb),
      cell(boot?.metrics.rssMb),
      r(boot?.metrics.rssMb),
      cell(boot?.metrics.heapUsedMb),
      r(boot?.metrics.heapUsedMb),
    ];
  });
  return {
    headers: [
      'system',
      'pub/sub peak RSS MB',
      '× raw',
      'RPC throughput peak RSS MB',
      '× raw',
      'RPC throughput heap MB',
      '− raw MB',
      'booted, idle: RSS MB',
      '× raw',
      'heap MB',
      '× raw',
    ],
    align: 'lrrrrrrrrrr',
    rows,
  };
}

export function consoleTable(t: Table): string {
  const widths = t.headers.map((h, i) => Math.max(h.length, ...t.rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (t.align[i] === 'r' ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(t.headers), widths.map((w) => '─'.repeat(w)).join('  '), ...t.rows.map(line)].join('\n');
}

export function markdownTable(t: Table): string {
  const sep = t.headers.map((_, i) => (t.align[i] === 'r' ? '---:' : '---'));
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(t.headers), line(sep), ...t.rows.map(line)].join('\n');
}

/** The problems a reader must see: any lost, duplicated or unanswered message, any failed trial. */
export function problems(summaries: ScenarioSummary[]): string[] {
  const out: string[] = [];
  for (const sc of summaries) {
    for (const s of sc.systems) {
      const where = `${sc.scenario} / ${s.label}`;
      if (s.lost || s.duplicated || s.unexpected)
        out.push(`${where}: ${s.lost} lost, ${s.duplicated} duplicated, ${s.unexpected} unexpected`);
      if (s.leftInQueue) out.push(`${where}: ${s.leftInQueue} message(s) left in the queue after the system closed`);
      if (s.wrongReplies || s.failedCalls)
        out.push(`${where}: ${s.wrongReplies} wrong replies, ${s.failedCalls} failed calls`);
      if (s.misrouted) out.push(`${where}: ${s.misrouted} message(s) reached the wrong handler`);
      if (s.residue.length) out.push(`${where}: left on the broker (deleted): ${s.residue.join(', ')}`);
      for (const e of s.errors) out.push(`${where}: ${e}`);
    }
  }
  return out;
}

// What the scenarios that run apart from the systems' matrix share (batch handlers, service
// queues, the cluster, delayed delivery, memory://, unused features): each compares a few ways of
// doing one thing, every trial a fresh process whose one `@@RESULT {json}` line the driver reads back.
export interface SideTable {
  headers: string[];
  /** 'l' or 'r' per column. */
  align: string;
  rows: string[][];
}

/** One scenario's outcome: its table, what to read it with, and what went wrong. */
export interface SideBench {
  name: string;
  title: string;
  table: SideTable;
  /** Sentences printed under the table (and written under it in docs/benchmarks.md). */
  notes: string[];
  /** Lost or duplicated messages, failed trials: the run fails when there is any. */
  problems: string[];
  /** Runs made, when not the bench's --runs. */
  runs?: number;
  /** What the docs say when there is no problem (default: every message arrived exactly once). */
  allGood?: string;
  /** Every trial's figures, for the JSON file. */
  trials: unknown[];
  /** Versions, node placement, … of this scenario, for the JSON file. */
  meta?: Record<string, unknown>;
}

/** What every scenario's driver gets from `npm run bench`'s options. */
export interface SideContext {
  runs: number;
  url: string;
  managementUrl?: string;
  runId: string;
  prefetch: number;
  publishWindow: number;
  warmupEvents: number;
  warmupCalls: number;
  pauseMs: number;
  trialTimeoutS: number;
}

/** What an interrupt (Ctrl-C) must still stop: the brokers a scenario started. */
export const onInterrupt = new Set<() => Promise<void>>();

/** Runs `use` with a resource that `close` stops, also when the bench is interrupted meanwhile. */
export async function closedOnInterrupt<T, R>(
  resource: T,
  close: (resource: T) => Promise<void>,
  use: (resource: T) => Promise<R>,
): Promise<R> {
  const stop = () => close(resource);
  onInterrupt.add(stop);
  try {
    return await use(resource);
  } finally {
    onInterrupt.delete(stop);
    await stop();
  }
}

export function median(values: number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function num(v: number, digits = 0): string {
  return Number.isFinite(v)
    ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : '—';
}

/** Milliseconds and microseconds with as many decimals as their size deserves. */
export function fine(v: number): string {
  return !Number.isFinite(v) ? '—' : v < 10 ? num(v, 2) : v < 100 ? num(v, 1) : num(v, 0);
}

export function ratio(v: number, reference: number): string {
  return Number.isFinite(v / reference) ? `${(v / reference).toFixed(2)}×` : '—';
}

export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Every scenario's trial processes run through the matrix's trial runner.
export { reportResult, runTrialProcess, trialFailed } from '../trial.js';

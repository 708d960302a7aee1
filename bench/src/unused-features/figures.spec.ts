import type { TrialOutput } from '../systems.js';
import { unusedTable, type UnusedTrial } from './figures.js';
import { expectedWiring, wiringProblems } from './variants.js';

const pubsub = (msgsPerSec: number, cpuUsPerMsg: number) =>
  ({ result: { kind: 'pubsub', msgsPerSec, e2eP50Ms: 10, cpuUsPerMsg } }) as unknown as TrialOutput;
const rpc = (callsPerSec: number, p50Ms: number) =>
  ({ result: { kind: 'rpc', callsPerSec, p50Ms, cpuUsPerCall: 50, heapMb: 20 } }) as unknown as TrialOutput;

function trial(run: number, variant: UnusedTrial['variant'], workload: UnusedTrial['workload'], output?: TrialOutput) {
  return { run, variant, workload, load1: 0, output, error: output ? undefined : 'boom' } satisfies UnusedTrial;
}

const row = (table: ReturnType<typeof unusedTable>, figure: string) => table.rows.find((r) => r[0] === figure)!;

describe('the unused-features table', () => {
  it('gives each figure both medians and featured ÷ plain, over the trials that finished', () => {
    const table = unusedTable(
      [
        trial(1, 'plain', 'pubsub', pubsub(1000, 80)),
        trial(2, 'plain', 'pubsub', pubsub(3000, 60)),
        trial(3, 'plain', 'pubsub', pubsub(2000, 70)),
        trial(1, 'featured', 'pubsub', pubsub(1500, 77)),
        trial(2, 'featured', 'pubsub'),
        trial(1, 'plain', 'rpc-seq', rpc(1000, 0.8)),
        trial(1, 'featured', 'rpc-seq', rpc(900, 1.0)),
      ],
      100,
    );
    expect(row(table, 'pub/sub msgs/s')).toEqual([
      'pub/sub msgs/s',
      'higher',
      '2,000',
      '1,500',
      '0.75×',
      '1,000–3,000',
      '1,500–1,500',
      '3/1',
    ]);
    expect(row(table, 'pub/sub CPU µs/msg').slice(2, 5)).toEqual(['70.0', '77.0', '1.10×']);
    expect(row(table, 'RPC sequential p50 ms').slice(1, 5)).toEqual(['lower', '0.80', '1.00', '1.25×']);
  });

  it('writes a dash where a variant has no finished trial, and names the calls in flight', () => {
    const table = unusedTable([trial(1, 'plain', 'rpc-conc', rpc(5000, 12))], 64);
    expect(row(table, 'RPC 64 in flight calls/s').slice(2, 8)).toEqual(['5,000', '—', '—', '5,000–5,000', '—', '1/0']);
  });
});

describe("the unused-features apps' wiring", () => {
  it('is no problem when it is what the variant should have', () => {
    expect(wiringProblems('plain', expectedWiring('plain'))).toEqual([]);
    expect(wiringProblems('featured', expectedWiring('featured'))).toEqual([]);
  });

  it('names each difference: a connection missing, a handler count, the schemas, the API', () => {
    expect(wiringProblems('featured', expectedWiring('plain'))).toEqual([
      'connection "default" had 1 handler(s), not 5',
      'connection "other" had 0 handler(s), not 2',
      '0 handler(s) had a schema, not 2',
      '@opentelemetry/api was not importable',
    ]);
    expect(wiringProblems('plain', { ...expectedWiring('plain'), openTelemetryImportable: true })).toEqual([
      '@opentelemetry/api was importable',
    ]);
  });
});

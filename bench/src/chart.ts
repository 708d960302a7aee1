// The ratios to raw amqplib (two connections) as an SVG bar chart: one group per headline figure,
// one bar per system.
// Run on its own, it draws the chart of an earlier run: node dist/src/chart.js <results.json> <out.svg>
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ScenarioSummary } from './report.js';
import type { Scenario } from './harness.js';

interface Figure {
  scenario: Scenario;
  metric: string;
  title: string;
  /** Latency and boot time: a ratio under 1 is better. */
  lowerIsBetter: boolean;
}

const FIGURES: Figure[] = [
  { scenario: 'pubsub', metric: 'msgsPerSec', title: 'pub/sub throughput (msgs/s)', lowerIsBetter: false },
  { scenario: 'rpc-seq', metric: 'p50Ms', title: 'RPC latency, sequential (p50)', lowerIsBetter: true },
  {
    scenario: 'rpc-conc',
    metric: 'callsPerSec',
    title: 'RPC throughput, 100 in flight (calls/s)',
    lowerIsBetter: false,
  },
  { scenario: 'boot', metric: 'setupMs', title: 'boot with 200 handlers (setup ms)', lowerIsBetter: true },
  // CPU time of the trial process per message or call: steadier than the rates on a shared machine.
  { scenario: 'pubsub', metric: 'cpuUsPerMsg', title: 'pub/sub CPU per message', lowerIsBetter: true },
  { scenario: 'rpc-seq', metric: 'cpuUsPerCall', title: 'RPC CPU per call, sequential', lowerIsBetter: true },
  { scenario: 'rpc-conc', metric: 'cpuUsPerCall', title: 'RPC CPU per call, 100 in flight', lowerIsBetter: true },
];

const COLOURS: Record<string, string> = {
  raw: '#8c8c8c',
  'raw-1conn': '#c4c4c4',
  warren: '#1b7f79',
  'warren-exclusive': '#59b3a9',
  'warren-otel': '#2f5f8a',
  golevelup: '#e08a2c',
  'nest-rmq': '#7d5ba6',
};

/** The axis reaches the longest bar, but no further than this: a longer one is cut off, its figure says how long it is. */
const AXIS_LIMIT = 4;

export function ratioChart(summaries: ScenarioSummary[], caption: string): string {
  const width = 820;
  const labelWidth = 270;
  const barArea = 440;
  const barHeight = 16;
  const gap = 5;
  const longest = Math.max(
    1,
    ...FIGURES.flatMap((f) =>
      summaries
        .filter((s) => s.scenario === f.scenario)
        .flatMap((s) => s.systems.map((x) => x.metrics[f.metric]?.vsRaw ?? 0)),
    ),
  );
  const axisMax = Math.min(AXIS_LIMIT, Math.ceil(longest * 2) / 2);
  const x = (ratio: number) => labelWidth + (Math.min(ratio, axisMax) / axisMax) * barArea;
  const parts: string[] = [];
  let y = 48;
  for (const figure of FIGURES) {
    const summary = summaries.find((s) => s.scenario === figure.scenario);
    const bars = (summary?.systems ?? [])
      .map((s) => ({ system: s.system, label: s.label, ratio: s.metrics[figure.metric]?.vsRaw }))
      .flatMap((b) => (b.ratio !== undefined && Number.isFinite(b.ratio) ? [{ ...b, ratio: b.ratio }] : []));
    if (bars.length === 0) continue;
    const direction = figure.lowerIsBetter ? 'lower is better' : 'higher is better';
    parts.push(text(12, y, `${figure.title} — × raw amqplib (2 connections), ${direction}`, 'bold'));
    y += 10;
    const top = y;
    for (const bar of bars) {
      const end = x(bar.ratio);
      const clipped = bar.ratio > axisMax;
      parts.push(text(labelWidth - 8, y + barHeight - 4, bar.label, 'normal', 'end'));
      parts.push(
        `<rect x="${labelWidth}" y="${y}" width="${(end - labelWidth).toFixed(1)}" height="${barHeight}" fill="${COLOURS[bar.system] ?? '#444'}"/>`,
      );
      const figureText = `${bar.ratio >= 10 ? bar.ratio.toFixed(0) : bar.ratio.toFixed(2)}×${clipped ? ' (cut off)' : ''}`;
      parts.push(text(end + 6, y + barHeight - 4, figureText));
      y += barHeight + gap;
    }
    // The limit: raw amqplib at 1×.
    parts.push(
      `<line x1="${x(1)}" y1="${top - 3}" x2="${x(1)}" y2="${y - gap + 3}" stroke="#222" stroke-dasharray="3 3"/>`,
    );
    y += 22;
  }
  const height = y + 10;
  const ticks = Array.from({ length: axisMax * 2 + 1 }, (_, i) => i / 2)
    .map((t) => text(x(t), height - 8, `${t}×`, 'normal', 'middle'))
    .join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height + 8}" viewBox="0 0 ${width} ${height + 8}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    text(12, 22, caption, 'bold'),
    ...parts,
    ticks,
    '</svg>',
    '',
  ].join('\n');
}

function text(x: number, y: number, content: string, weight = 'normal', anchor = 'start'): string {
  const escaped = content.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<text x="${x.toFixed(1)}" y="${y}" font-weight="${weight}" text-anchor="${anchor}">${escaped}</text>`;
}

export function chartCaption(meta: { runId: string; startedAt: string; options: { runs: number } }): string {
  return `Warren and its peers against raw amqplib — run ${meta.runId} of ${meta.startedAt.slice(0, 10)}, medians of ${meta.options.runs} runs`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) {
    console.error('usage: node dist/src/chart.js <bench/results/bench-….json> <out.svg>');
    process.exit(2);
  }
  const { meta, summaries } = JSON.parse(readFileSync(input, 'utf8')) as {
    meta: Parameters<typeof chartCaption>[0];
    summaries: ScenarioSummary[];
  };
  writeFileSync(output, ratioChart(summaries, chartCaption(meta)));
  console.log(`wrote ${output}`);
}

// Before/after of a library change in the same conditions: alternates two builds of
// libs/warren/dist (directories given as A and B) round by round, each round one bench run of raw
// and Warren, and prints the CPU per message or call (the steady figure on a loaded machine) of
// every trial, with the medians per variant and Warren's ratio to raw within the same round.
//
//   node bench/ab-cpu.mjs <distA> <distB> [rounds, default 3] [scenarios, default pubsub,rpc-seq,rpc-conc]
//
// Run from the repository root after `npm run bench` has built the bench (bench/dist), against
// RABBITMQ_URL. The build that was in libs/warren/dist is put back at the end.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const [distA, distB, roundsArg, scenariosArg] = process.argv.slice(2);
if (!distA || !distB) {
  console.error('usage: node bench/ab-cpu.mjs <distA> <distB> [rounds] [scenarios]');
  process.exit(2);
}
const rounds = Number(roundsArg ?? 3);
const scenarios = scenariosArg ?? 'pubsub,rpc-seq,rpc-conc';
const live = resolve('libs/warren/dist');
const saved = mkdtempSync(join(tmpdir(), 'warren-ab-'));
renameSync(live, join(saved, 'dist'));
const figures = []; // { variant, round, scenario, system, cpu }
const cpuOf = (result) => result.cpuUsPerMsg ?? result.cpuUsPerCall;
try {
  for (let round = 1; round <= rounds; round++) {
    // A first in odd rounds, B first in even ones: neither always runs on the warmer machine.
    const order = round % 2 === 1 ? ['A', 'B'] : ['B', 'A'];
    for (const variant of order) {
      rmSync(live, { recursive: true, force: true });
      cpSync(resolve(variant === 'A' ? distA : distB), live, { recursive: true });
      const out = mkdtempSync(join(tmpdir(), 'warren-ab-run-'));
      execFileSync(
        'node',
        ['bench/dist/src/run.js', '--runs', '1', '--systems', 'raw,warren', '--scenarios', scenarios, '--out', out],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      const file = readdirSync(out).find((f) => f.endsWith('.json'));
      const { trials } = JSON.parse(readFileSync(join(out, file), 'utf8'));
      for (const t of trials) {
        const result = t.output?.result;
        if (result && cpuOf(result) !== undefined)
          figures.push({ variant, round, scenario: t.scenario, system: t.system, cpu: cpuOf(result) });
      }
      rmSync(out, { recursive: true, force: true });
    }
  }
} finally {
  rmSync(live, { recursive: true, force: true });
  renameSync(join(saved, 'dist'), live);
  rmSync(saved, { recursive: true, force: true });
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
for (const scenario of scenarios.split(',')) {
  for (const variant of ['A', 'B']) {
    const of = (system) =>
      figures.filter((f) => f.variant === variant && f.scenario === scenario && f.system === system);
    const raw = of('raw');
    const warren = of('warren');
    const ratios = warren.map((w) => w.cpu / raw.find((r) => r.round === w.round).cpu);
    console.log(
      `${scenario.padEnd(9)} ${variant}  raw ${median(raw.map((f) => f.cpu))
        .toFixed(1)
        .padStart(6)}  ` +
        `warren ${median(warren.map((f) => f.cpu))
          .toFixed(1)
          .padStart(6)} µs  ` +
        `× raw ${median(ratios).toFixed(2)} (${ratios.map((r) => r.toFixed(2)).join(' ')})`,
    );
  }
}

// One trial: a fresh worker process (worker.ts) given its TrialConfig, its `@@RESULT` line read
// back. Shared by the bench's driver and its wire check.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrialConfig, TrialOutput } from './systems.js';

const here = dirname(fileURLToPath(import.meta.url)); // bench/dist/src
const benchDir = join(here, '..', '..');
const workerPath = join(here, 'worker.js');

/** The trial running now: an interrupt kills it. */
let current: ChildProcess | undefined;

export function runWorker(config: TrialConfig, profile: boolean, timeoutS: number): Promise<TrialOutput> {
  const args = ['--expose-gc'];
  if (profile) {
    const dir = join(benchDir, 'results', 'profiles');
    mkdirSync(dir, { recursive: true });
    args.push('--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${config.spec.tag}.cpuprofile`);
  }
  args.push(workerPath, JSON.stringify(config));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: benchDir });
    current = child;
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      const line = stdout.split('\n').find((l) => l.startsWith('@@RESULT '));
      if (code === 0 && line) return resolve(JSON.parse(line.slice('@@RESULT '.length)) as TrialOutput);
      // The worker's own report starts with "worker failed:" (its error's message, then the stack).
      const lines = (stderr || stdout).trim().split('\n');
      const at = lines.findIndex((l) => l.startsWith('worker failed:'));
      const tail = (at === -1 ? lines.slice(-6) : lines.slice(at, at + 3)).join('\n');
      reject(
        new Error(
          `worker exited with ${signal ?? `code ${code}`}${signal === 'SIGKILL' ? ` (over ${timeoutS} s)` : ''}: ${tail}`,
        ),
      );
    });
  });
}

/** Interrupted: the running trial's process goes too (the driver then cleans the broker up). */
export function killCurrentTrial(): void {
  current?.kill('SIGKILL');
}

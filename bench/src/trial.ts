// One trial: a fresh Node process given its config as JSON, its one `@@RESULT {json}` line read
// back. The matrix's worker (worker.ts, also the wire check's) and every other scenario's trial
// processes run through here, and an interrupt of the bench kills whichever runs.
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

/** Runs `node --expose-gc [nodeArgs] <path> <config as JSON>` and resolves with its `@@RESULT` line's JSON. */
export function runTrialProcess<T>(
  path: string,
  config: unknown,
  timeoutS: number,
  nodeArgs: string[] = [],
): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', ...nodeArgs, path, JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: benchDir,
    });
    current = child;
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (current === child) current = undefined;
      const line = stdout.split('\n').find((l) => l.startsWith('@@RESULT '));
      if (code === 0 && line) return resolve(JSON.parse(line.slice('@@RESULT '.length)) as T);
      // The process's own report (trialFailed) starts with "trial failed:": its error, then the stack.
      const lines = (stderr || stdout).trim().split('\n');
      const at = lines.findIndex((l) => l.startsWith(FAILED));
      const tail = (at === -1 ? lines.slice(-6) : lines.slice(at, at + 3)).join('\n');
      reject(
        new Error(
          `trial exited with ${signal ?? `code ${code}`}${signal === 'SIGKILL' ? ` (over ${timeoutS} s)` : ''}: ${tail}`,
        ),
      );
    });
  });
}

/** A trial of the matrix: worker.ts with the system and scenario of `config`, under the profiler if asked. */
export function runWorker(config: TrialConfig, profile: boolean, timeoutS: number): Promise<TrialOutput> {
  const nodeArgs: string[] = [];
  if (profile) {
    const dir = join(benchDir, 'results', 'profiles');
    mkdirSync(dir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${config.spec.tag}.cpuprofile`);
  }
  return runTrialProcess<TrialOutput>(workerPath, config, timeoutS, nodeArgs);
}

/** Interrupted: the running trial's process goes too (the driver then cleans the broker up). */
export function killCurrentTrial(): void {
  current?.kill('SIGKILL');
}

const FAILED = 'trial failed:';

/** The end of every trial process: its result on stdout as one line, then exit. */
export function reportResult(result: unknown): void {
  process.stdout.write(`@@RESULT ${JSON.stringify(result)}\n`, () => process.exit(0));
}

export function trialFailed(err: unknown): never {
  process.stderr.write(`${FAILED} ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}

import amqplib from 'amqplib';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { brokerUrl } from './broker.js';
import { testLogs } from './logs.js';

/** The built tutorial programs (`npm run build` writes it; `npm test` builds first). */
export const MAIN_JS = fileURLToPath(new URL('../../dist/src/main.js', import.meta.url));

export type LineMatcher = string | RegExp | ((line: string) => boolean);

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Every process spawned and not yet reaped: `stopAllPrograms()` ends them. */
const running = new Set<ProgramProcess>();

/**
 * One tutorial program running as a real child process (`node dist/src/main.js <name> [args]`),
 * with its stdout split into lines as they arrive.
 */
export class ProgramProcess {
  /** stdout, line by line, in arrival order. */
  readonly lines: string[] = [];
  /** When each stdout line arrived (Date.now()), index for index with `lines`. */
  readonly times: number[] = [];
  stderr = '';
  /** Set once the process has exited. */
  status?: ExitStatus;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitStatus>;

  private readonly child: ChildProcess;
  private readonly listeners = new Set<() => void>();
  private partial = '';

  constructor(
    readonly name: string,
    readonly args: string[],
    /** On top of the test's environment and the test broker's RABBITMQ_URL; `undefined` removes a variable. */
    extraEnv: Record<string, string | undefined> = {},
  ) {
    if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} does not exist: run \`npm run build\` first`);
    const env: NodeJS.ProcessEnv = { ...process.env, RABBITMQ_URL: brokerUrl(), ...extraEnv };
    for (const [key, value] of Object.entries(extraEnv)) if (value === undefined) delete env[key];
    // Debug logging would put Nest's lines among the tutorial's.
    delete env.WARREN_LOG;
    this.child = spawn(process.execPath, [MAIN_JS, name, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => this.onStdout(chunk));
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
      this.capture('stderr', chunk.replace(/\r?\n$/, ''));
      this.notify();
    });
    running.add(this);
    this.exited = new Promise<ExitStatus>((resolve) => {
      // 'close' (not 'exit'): by then stdout and stderr have been read to the end.
      this.child.once('close', (code, signal) => {
        if (this.partial) this.pushLine(this.partial);
        this.partial = '';
        this.status = { code, signal };
        running.delete(this);
        this.notify();
        resolve(this.status);
      });
      this.child.once('error', (err) => {
        this.stderr += `\n[spawn error] ${err.message}`;
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get label(): string {
    return [this.name, ...this.args.map((a) => JSON.stringify(a))].join(' ');
  }

  /** The process's output so far, for failure messages. */
  describe(): string {
    const status = this.status ? `exited with ${this.status.code ?? this.status.signal}` : `running, pid ${this.pid}`;
    const indent = (text: string) => (text ? text.replace(/^/gm, '    | ') : '    (nothing)');
    return `  ${this.label} (${status})\n  stdout:\n${indent(this.lines.join('\n'))}\n  stderr:\n${indent(this.stderr.trimEnd())}`;
  }

  /** The stdout lines that match. */
  matching(matcher: LineMatcher): string[] {
    const test = toPredicate(matcher);
    return this.lines.filter((l) => test(l));
  }

  /** Index of the first stdout line that matches, or -1. */
  indexOf(matcher: LineMatcher, from = 0): number {
    const test = toPredicate(matcher);
    for (let i = from; i < this.lines.length; i++) if (test(this.lines[i])) return i;
    return -1;
  }

  /** Sends a signal (if still running) and resolves when the process has exited. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitStatus> {
    if (!this.status) this.child.kill(signal);
    return this.exited;
  }

  /** Ends the process: SIGTERM (a clean shutdown), SIGKILL if it is still there after `graceMs`. */
  async stop(graceMs = 3000): Promise<ExitStatus> {
    if (this.status) return this.status;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!this.status) this.child.kill('SIGKILL');
    }, graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Calls `listener` on every new stdout line, stderr output and on exit; returns the unsubscriber. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private onStdout(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.pushLine(line);
    this.notify();
  }

  private pushLine(line: string): void {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    this.lines.push(text);
    this.times.push(Date.now());
    this.capture('stdout', text);
  }

  /** The test's log capture has the output too, among the test's other lines, shown if it fails. */
  private capture(stream: 'stdout' | 'stderr', text: string): void {
    testLogs().record(stream, `${this.label}, pid ${this.pid}`, text);
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

function toPredicate(matcher: LineMatcher): (line: string) => boolean {
  if (typeof matcher === 'string') return (line) => line === matcher;
  if (matcher instanceof RegExp) return (line) => matcher.test(line);
  return matcher;
}

function describeMatcher(matcher: LineMatcher): string {
  return typeof matcher === 'function'
    ? 'a line matching the predicate'
    : `the line ${JSON.stringify(String(matcher))}`;
}

/** Starts a tutorial program; `stopAllPrograms()` (afterEach) ends it if the test does not. */
export function startProgram(name: string, ...args: string[]): ProgramProcess {
  return new ProgramProcess(name, args);
}

/** `startProgram` with environment variables of its own (another broker URL, a port). */
export function startProgramWithEnv(env: NodeJS.ProcessEnv, name: string, ...args: string[]): ProgramProcess {
  return new ProgramProcess(name, args, env);
}

/** `startProgram` with `env` on top of the test's environment (`undefined` removes a variable). */
export function startProgramWith(
  env: Record<string, string | undefined>,
  name: string,
  ...args: string[]
): ProgramProcess {
  return new ProgramProcess(name, args, env);
}

/**
 * Resolves with `check()`'s first defined result, re-evaluated on every output of `procs`.
 * Rejects, with everything the processes printed, after `timeoutMs`, or as soon as one of them
 * has exited while the condition still does not hold (it could then only hold by luck).
 */
export function waitFor<T>(
  procs: ProgramProcess[],
  what: string,
  check: () => T | undefined | false,
  timeoutMs = 15_000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const unsubscribes: (() => void)[] = [];
    const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
    const finish = (outcome: () => void) => {
      for (const u of unsubscribes) u();
      clearTimeout(timer);
      outcome();
    };
    const fail = (why: string) =>
      finish(() =>
        reject(new Error(`${why} waiting for ${what}. Output so far:\n${procs.map((p) => p.describe()).join('\n')}`)),
      );
    const evaluate = (): boolean => {
      let result: T | undefined | false;
      try {
        result = check();
      } catch (err) {
        finish(() => reject(err));
        return true;
      }
      if (result !== undefined && result !== false) {
        finish(() => resolve(result as T));
        return true;
      }
      const gone = procs.find((p) => p.status);
      if (gone) {
        fail(`${gone.label} exited (${gone.status!.code ?? gone.status!.signal})`);
        return true;
      }
      return false;
    };
    if (evaluate()) return;
    for (const p of procs) unsubscribes.push(p.onChange(evaluate));
  });
}

/** Resolves with the first stdout line of `proc` that matches (already printed or still to come). */
export function waitForLine(proc: ProgramProcess, matcher: LineMatcher, timeoutMs = 15_000): Promise<string> {
  const test = toPredicate(matcher);
  return waitFor(
    [proc],
    `${describeMatcher(matcher)} from ${proc.label}`,
    () => proc.lines.find((l) => test(l)),
    timeoutMs,
  );
}

/** Resolves once `proc` has printed `count` lines that match; with all the matching lines. */
export function waitForLines(
  proc: ProgramProcess,
  matcher: LineMatcher,
  count: number,
  timeoutMs = 15_000,
): Promise<string[]> {
  const test = toPredicate(matcher);
  return waitFor(
    [proc],
    `${count} of ${describeMatcher(matcher)} from ${proc.label}`,
    () => {
      const found = proc.lines.filter((l) => test(l));
      return found.length >= count ? found : undefined;
    },
    timeoutMs,
  );
}

export interface ProgramRun {
  label: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: string[];
  stderr: string;
}

/** Runs a program that ends by itself (the senders) and resolves with how it ended and what it printed. */
export async function runProgram(name: string, args: string[] = [], timeoutMs = 20_000): Promise<ProgramRun> {
  const proc = startProgram(name, ...args);
  const timer = setTimeout(() => void proc.kill('SIGKILL'), timeoutMs);
  try {
    const { code, signal } = await proc.exited;
    if (signal === 'SIGKILL') throw new Error(`${proc.label} did not end within ${timeoutMs} ms:\n${proc.describe()}`);
    return { label: proc.label, code, signal, lines: [...proc.lines], stderr: proc.stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a sender and expects it to succeed printing exactly `expectedLines` (a message with its output otherwise). */
export async function runSender(
  name: string,
  args: string[],
  expectedLines: string[],
  timeoutMs?: number,
): Promise<void> {
  const run = await runProgram(name, args, timeoutMs);
  const ok = run.code === 0 && run.stderr === '' && JSON.stringify(run.lines) === JSON.stringify(expectedLines);
  if (!ok) {
    throw new Error(
      `${run.label}: expected exit 0 printing ${JSON.stringify(expectedLines)}, ` +
        `got exit ${run.code ?? run.signal}, stdout ${JSON.stringify(run.lines)}, stderr ${JSON.stringify(run.stderr)}`,
    );
  }
}

/** Ends every program still running (SIGTERM, then SIGKILL) and waits for them to be gone. */
export async function stopAllPrograms(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

/**
 * The number of consumers on `queue` right now, straight from the queue (a passive declare), not
 * from the management API's statistics, which lag by seconds. 0 when the queue does not exist.
 */
export async function consumerCount(queue: string): Promise<number> {
  const connection = await amqplib.connect(brokerUrl());
  try {
    connection.on('error', () => undefined);
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    const ok = await channel.checkQueue(queue).catch(() => undefined);
    return ok?.consumerCount ?? 0;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Publishes one text/plain message on the test's own connection, confirmed by the broker. */
export async function publishText(exchange: string, routingKey: string, body: string): Promise<void> {
  const connection = await amqplib.connect(brokerUrl());
  try {
    const channel = await connection.createConfirmChannel();
    channel.publish(exchange, routingKey, Buffer.from(body, 'utf8'), { contentType: 'text/plain' });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

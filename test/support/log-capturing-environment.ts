import type { Circus } from '@jest/types';
import { TestEnvironment } from 'jest-environment-node';
import { relative } from 'node:path';
import { format } from 'node:util';

/** One line the code under test logged, or a child process printed. */
export interface CapturedLine {
  /** When it was logged (Date.now()). */
  at: number;
  /** Nest's log level (`log`, `warn`, `error`…), the console method, or `stdout`/`stderr` of a child process. */
  level: string;
  /** Nest's logger context (`Warren`, `ExceptionsHandler`), `console`, or a child process's label. */
  source: string;
  text: string;
}

/** The capture one test file writes to (on its global, shared with this environment). */
export interface TestLogs {
  record(level: string, source: string, text: string): void;
  /** The lines captured since the running test started, its `beforeEach` hooks included. */
  sinceTestStart(): readonly CapturedLine[];
}

declare global {
  var __warrenTestLogs: TestLogs | undefined;
}

const CONSOLE_METHODS = ['log', 'info', 'warn', 'error', 'debug'] as const;
/** A failing test that logged more than this shows its first and last lines only. */
const MAX_PRINTED_LINES = 1000;

/**
 * The node environment, with every log line of the code under test held per test: a passing
 * test's lines are dropped, a failing test's are printed under its name. The lines are those of
 * Nest's loggers (test/support/capture-nest-logs.ts), the console, and the child processes of
 * test/support/programs.ts. `WARREN_TEST_LOGS=all` prints every test's lines, passing or not.
 */
export default class LogCapturingEnvironment extends TestEnvironment {
  private lines: CapturedLine[] = [];
  private testStart = 0;
  private readonly file: string;
  private readonly printEveryTest = process.env.WARREN_TEST_LOGS === 'all';

  constructor(...[config, context]: ConstructorParameters<typeof TestEnvironment>) {
    super(config, context);
    this.file = relative(config.projectConfig.rootDir, context.testPath);
    this.global.__warrenTestLogs = {
      record: (level, source, text) => this.record(level, source, text),
      sinceTestStart: () => this.lines.slice(this.testStart),
    };
  }

  override async setup(): Promise<void> {
    await super.setup();
    // Jest's console would print after the file whether its tests pass or not.
    const testConsole = this.global.console as unknown as Record<string, (...args: unknown[]) => void>;
    for (const method of CONSOLE_METHODS) {
      testConsole[method] = (...args: unknown[]) => this.record(method, 'console', format(...args));
    }
  }

  handleTestEvent(event: Circus.Event, state: Circus.State): void {
    switch (event.name) {
      case 'test_start':
        this.testStart = this.lines.length;
        break;
      case 'test_done': {
        const failed = event.test.errors.length > 0;
        if (failed || this.printEveryTest) this.print(`${testName(event.test)}${failed ? ' failed' : ''}`);
        this.lines = [];
        this.testStart = 0;
        break;
      }
      case 'run_finish':
        // A failing afterAll hook fails the file, not a test: what was logged since the last test.
        if (state.unhandledErrors.length > 0 || this.printEveryTest) this.print('after the last test');
        break;
    }
  }

  private record(level: string, source: string, text: string): void {
    this.lines.push({ at: Date.now(), level, source, text });
  }

  /** Writes the lines since the previous test ended, marking where this one started. */
  private print(title: string): void {
    if (this.lines.length === 0) return;
    const rendered = this.lines.map(render);
    if (this.testStart > 0) rendered.splice(this.testStart, 0, '── the test starts ──');
    const shown =
      rendered.length <= MAX_PRINTED_LINES
        ? rendered
        : [
            ...rendered.slice(0, MAX_PRINTED_LINES / 2),
            `… ${rendered.length - MAX_PRINTED_LINES} lines left out …`,
            ...rendered.slice(-MAX_PRINTED_LINES / 2),
          ];
    const count = `${this.lines.length} line${this.lines.length === 1 ? '' : 's'}`;
    const body = shown.join('\n').replace(/^/gm, '    ');
    process.stderr.write(`\n  ● ${this.file} › ${title}: what it logged (${count})\n\n${body}\n\n`);
  }
}

function testName(test: Circus.TestEntry): string {
  const names = [test.name];
  for (let block = test.parent; block.parent; block = block.parent) names.unshift(block.name);
  return names.join(' › ');
}

function render(line: CapturedLine): string {
  const time = new Date(line.at).toTimeString().slice(0, 8) + '.' + String(line.at % 1000).padStart(3, '0');
  const head = `${time} ${line.level.toUpperCase().padEnd(7)} ${line.source ? `[${line.source}] ` : ''}`;
  // Continuation lines (a stack trace) line up under the first one's text.
  return head + line.text.replace(/\n/g, `\n${' '.repeat(head.length)}`);
}

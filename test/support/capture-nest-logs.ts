// Jest runs this in every test file before its tests (setupFilesAfterEnv): every Nest logger
// writes to the test's capture (test/support/log-capturing-environment.ts) instead of the
// terminal. Nest's ConsoleLogger writes to process.stdout itself, past jest's console.
import { ConsoleLogger, Logger, type LogLevel } from '@nestjs/common';
import { testLogs } from './logs.js';

const ALL_LEVELS: LogLevel[] = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'];

class CapturingLogger extends ConsoleLogger {
  constructor() {
    super({ colors: false, logLevels: ALL_LEVELS });
  }

  // Apps narrow the levels (`useLogger(['error'])`); the capture keeps them all, since only a
  // failing test shows them, and the tests assert warnings too.
  override setLogLevels(): void {}

  protected override printMessages(
    messages: unknown[],
    context = '',
    logLevel: LogLevel = 'log',
    _stream?: 'stdout' | 'stderr',
    errorStack?: unknown,
    params?: Record<string, unknown>,
  ): void {
    const logs = testLogs();
    const extra = params ? ` ${this.stringifyParams(params)}` : '';
    const stack = typeof errorStack === 'string' && errorStack ? `\n${errorStack}` : '';
    messages.forEach((message, i) =>
      logs.record(
        logLevel,
        context,
        this.stringifyMessage(message, logLevel) + extra + (i === messages.length - 1 ? stack : ''),
      ),
    );
  }

  // printMessages has the stack already.
  protected override printStackTrace(): void {}
}

const capture = new CapturingLogger();
let current: unknown = capture;
// Nest sets its loggers here: the testing module's TestingLogger at every compile(), the default
// ConsoleLogger, `undefined` for `logger: false`. Those all give way to the capture; a logger of
// the test's own (not a ConsoleLogger) is taken as it is, since the test wants its lines.
Object.defineProperty(Logger, 'staticInstanceRef', {
  configurable: true,
  get: () => current,
  set: (logger: unknown) => {
    current = logger === undefined || logger instanceof ConsoleLogger ? capture : logger;
  },
});

import type { CapturedLine, TestLogs } from './log-capturing-environment.js';

/** The running test file's capture, which the jest environment puts on its global. */
export function testLogs(): TestLogs {
  const logs = globalThis.__warrenTestLogs;
  if (!logs)
    throw new Error('no log capture: jest.config.js must run the tests in test/support/log-capturing-environment.ts');
  return logs;
}

/**
 * What the code under test logged since this test started (its `beforeEach` hooks included):
 * Nest's loggers, the console, and the child processes started with test/support/programs.ts.
 */
export function capturedLogs(): readonly CapturedLine[] {
  return testLogs().sinceTestStart();
}

/** The texts this test logged at `level` through the Nest logger of context `source`, in order. */
export function logged(level: string, source = 'Warren'): string[] {
  return capturedLogs()
    .filter((line) => line.level === level && line.source === source)
    .map((line) => line.text);
}

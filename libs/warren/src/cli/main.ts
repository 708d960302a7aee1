#!/usr/bin/env node
// The `warren` command: `warren topology` and `warren dlq`. See docs/cli.md.
import 'reflect-metadata';
import { CliError, UsageError } from './args.js';
import { DLQ_USAGE, dlqCommand } from './dlq-command.js';
import { TOPOLOGY_USAGE, topologyCommand } from './topology-command.js';

const USAGE = `Usage:\n  ${TOPOLOGY_USAGE.replace(/\n/g, '\n  ')}\n\n  ${DLQ_USAGE.replace(/\n/g, '\n  ')}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    out(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'topology') return topologyCommand(rest, out);
  if (command === 'dlq') return dlqCommand(rest, out);
  throw new UsageError(`unknown command "${command}"`);
}

// `warren topology app.js | head`: a reader that stops reading is no error of the command's.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    exitSoon();
  },
  (err: unknown) => {
    if (err instanceof UsageError) process.stderr.write(`warren: ${err.message}\n\n${USAGE}\n`);
    else if (err instanceof CliError) process.stderr.write(`warren: ${err.message}\n`);
    else process.stderr.write(`warren: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
    exitSoon();
  },
);

// Output is written; an app's provider that left a timer or socket open must not keep the
// command running. Unref'd, so a clean process exits at once, with stdout flushed.
function exitSoon(): void {
  setTimeout(() => process.exit(), 1000).unref();
}

import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { ordersPrograms, ordersService } from './orders/programs.js';
import { receive, send } from './tutorials/hello-world.js';
import {
  emitLog,
  emitLogDirect,
  emitLogTopic,
  receiveLogs,
  receiveLogsDirect,
  receiveLogsTopic,
} from './tutorials/logs.js';
import { evens, integersProducer, odds } from './tutorials/odd-even.js';
import { type Program, UsageError } from './tutorials/program.js';
import { rpcClient, rpcServer } from './tutorials/rpc.js';
import { newTask, worker } from './tutorials/work-queues.js';

const programs: Program[] = [
  send,
  receive,
  newTask,
  worker,
  emitLog,
  receiveLogs,
  emitLogDirect,
  receiveLogsDirect,
  emitLogTopic,
  receiveLogsTopic,
  rpcServer,
  rpcClient,
  integersProducer,
  odds,
  evens,
];

function usage(): string {
  return [
    'Usage: npm start -- <program> [args]   (no program: the order service)',
    '',
    'Programs:',
    ...[...ordersPrograms, ...programs].map((p) => `  ${p.usage}`),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === 'help' || name === '--help') {
    console.log(usage());
    return 0;
  }
  // The order service is the main job: `npm start` alone runs it.
  const service = name === undefined ? ordersService : ordersPrograms.find((p) => p.name === name);
  if (service) return service.start(args);
  const program = programs.find((p) => p.name === name);
  if (!program) {
    console.error(`Unknown program "${name}".\n\n${usage()}`);
    return 1;
  }
  let module;
  try {
    module = program.module(args);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
  // The tutorials' console lines are the programs' output; Warren's own lines stay to warnings.
  const logLevels = process.env.WARREN_LOG === 'debug' ? undefined : (['error', 'warn'] as const);
  const app = await NestFactory.createApplicationContext(module, { logger: logLevels ? [...logLevels] : undefined });
  const stop = async () => {
    await app.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const outcome = await program.run?.(app, args);
  if (outcome === 'done') {
    await app.close();
    return 0;
  }
  return -1; // keep running until a signal
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);

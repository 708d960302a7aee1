import type { DynamicModule, INestApplicationContext, Type } from '@nestjs/common';

/** One of the tutorials' command-line programs. */
export interface Program {
  name: string;
  /** Shown by `npm start` without a program, and on bad arguments. */
  usage: string;
  /** The Nest module the program boots; built from the command line where its topology depends on it. */
  module(args: string[]): Type | DynamicModule;
  /**
   * Runs once the app is up. A program that returns `'done'` is closed right after (the senders);
   * otherwise it keeps consuming until SIGINT/SIGTERM (the receivers).
   */
  run?(app: INestApplicationContext, args: string[]): Promise<'done' | void>;
}

/** What the tutorials print when a receiver is ready. */
export const WAITING_FOR_LOGS = ' [*] Waiting for logs. To exit press CTRL+C';
export const WAITING_FOR_MESSAGES = ' [*] Waiting for messages. To exit press CTRL+C';

export class UsageError extends Error {}

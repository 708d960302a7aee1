import { Inject, Injectable, Logger } from '@nestjs/common';
import { AsyncLocalStorage } from 'node:async_hooks';
import { type Handler, invokeHandler } from '../consumer/handler-invoker.js';
import type { WarrenContext } from '../consumer/warren-context.js';
import { addHandlerWrapper, type HandlerWrapper, type WrappedMethod } from '../decorators/handler-wrapper.js';
import { PoisonMessageError, WarrenDecoratorError } from '../warren.errors.js';
import type { OutboxDatabase } from './outbox-database.js';
import { OutboxError } from './outbox-errors.js';
import type { OutboxTables } from './outbox-schema.js';
import { OUTBOX_STATE } from './outbox-state.js';
import { type OutboxTransaction, sqlOf } from './sql-transaction.js';

export interface IdempotentOptions {
  /**
   * Who has handled a message, in the inbox's key (consumer, message id). Default: the method's
   * `Class.method`; set it to keep the records across a rename, or to share them between methods.
   */
  consumer?: string;
}

/**
 * Marks a `@Subscribe`/`@Consume`/`@RpcHandler` method idempotent: each delivery runs inside a
 * database transaction that first records (consumer, message id) in the inbox table, and a
 * message already recorded is acked without running the method (an RPC request gets the first
 * reply again). The method's own writes go through `inbox.transaction()`, so "recorded" and "done"
 * commit together or not at all; a method that throws rolls both back, and a retry runs it again.
 * Needs `OutboxModule.forRoot()` in the app.
 */
export function Idempotent(options: IdempotentOptions = {}): MethodDecorator {
  if (options === null || typeof options !== 'object') {
    throw new WarrenDecoratorError(`@Idempotent() takes an options object, got ${String(options)}`);
  }
  if (options.consumer !== undefined && (typeof options.consumer !== 'string' || options.consumer === '')) {
    throw new WarrenDecoratorError('@Idempotent({ consumer }): consumer must be a non-empty string');
  }
  return (target, method) => addHandlerWrapper(target, method, { wrapper: Inbox, decorator: '@Idempotent()', options });
}

interface InboxState {
  database: OutboxDatabase;
  tables: OutboxTables;
}

const current = new AsyncLocalStorage<OutboxTransaction>();

/** The inbox: runs idempotent handlers (see `@Idempotent()`), and hands them their transaction. */
@Injectable()
export class Inbox implements HandlerWrapper {
  private readonly logger = new Logger('WarrenInbox');

  constructor(@Inject(OUTBOX_STATE) private readonly state: InboxState) {}

  /**
   * The transaction the current idempotent handler runs in (a pg PoolClient, a PGlite transaction,
   * a TypeORM EntityManager, as the OutboxModule's database gives): write through it, and hand it
   * to `outbox.publish()` to send messages only if the handler's work commits.
   */
  transaction<T extends OutboxTransaction = OutboxTransaction>(): T {
    const tx = current.getStore();
    if (!tx) {
      throw new OutboxError('inbox.transaction() is only available inside an @Idempotent() handler, while it runs');
    }
    return tx as T;
  }

  wrap(handler: Handler, method: WrappedMethod): Handler {
    const consumer = (method.options as IdempotentOptions).consumer ?? method.label;
    const replies = method.metadata.some((m) => m.kind === 'rpc');
    if (method.metadata.some((m) => m.consumer?.batch)) {
      throw new OutboxError(
        `${method.label}: @Idempotent() records one message per transaction, and this is a batch handler; ` +
          `an idempotent batch handler is not supported: deduplicate in the handler, by the contexts' message ids`,
      );
    }
    const { database, tables } = this.state;
    return (payload: unknown, context: WarrenContext) => {
      const messageId = context.properties.messageId || (replies ? context.properties.correlationId : undefined);
      if (!messageId) {
        throw new PoisonMessageError(
          `${consumer}: an @Idempotent() handler needs a message_id on every message (Warren's Publisher and outbox ` +
            `set one); this one has none, so a copy of it could not be told apart`,
        );
      }
      return database.transaction(async (tx) => {
        const sql = sqlOf(tx, `${consumer} (inbox)`);
        const recorded = await sql(
          `INSERT INTO ${tables.inbox} (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1 AS n`,
          [consumer, messageId],
        );
        if (recorded.length === 0) {
          this.logger.debug(`${consumer}: message ${messageId} already handled, acked without running again`);
          if (!replies) return undefined;
          const [row] = await sql<{ reply: { value?: unknown } | string | null }>(
            `SELECT reply FROM ${tables.inbox} WHERE consumer = $1 AND message_id = $2`,
            [consumer, messageId],
          );
          const reply = typeof row?.reply === 'string' ? JSON.parse(row.reply) : row?.reply;
          return reply?.value;
        }
        const result = await current.run(tx, () => invokeHandler(handler, payload, context));
        if (replies && result !== undefined) {
          await sql(`UPDATE ${tables.inbox} SET reply = $3 WHERE consumer = $1 AND message_id = $2`, [
            consumer,
            messageId,
            JSON.stringify({ value: result }),
          ]);
        }
        return result;
      });
    };
  }
}

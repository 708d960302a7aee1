import type { Options } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { type EventContract, isEventContract } from '../contracts/contracts.js';
import { contractTarget, type OutgoingRules, prepareOutgoing } from '../publisher/outgoing-message.js';
import type { PublishOptions } from '../publisher/publisher.js';
import { OutboxError } from './outbox-errors.js';
import type { OutboxTables } from './outbox-schema.js';
import { NO_ACTIVE_TRANSACTION, type OutboxTransaction, sqlOf, sqlState, UNDEFINED_TABLE } from './sql-transaction.js';

/** What the outbox does not take from a publish's options: the message id is the row's. */
export type OutboxPublishOptions = Omit<PublishOptions, 'messageId'>;

/**
 * Writes messages into the outbox table inside the caller's own transaction: they are published
 * by the relay once, and only if, that transaction commits. The message is checked and encoded
 * here, as `Publisher.publish()` would (routing key, payload, headers, size, trace context), so a
 * bad one fails at the call; the id returned is the message id every copy of it will carry.
 */
export class OutboxWriter {
  constructor(
    private readonly tables: OutboxTables,
    /** The connection's: the same size limit and codecs as its `Publisher`. */
    private readonly rules: OutgoingRules,
  ) {}

  publish<T>(
    tx: OutboxTransaction,
    event: EventContract<T>,
    payload: NoInfer<T>,
    options?: OutboxPublishOptions,
  ): Promise<string>;
  publish(
    tx: OutboxTransaction,
    exchange: string,
    routingKey: string,
    payload: unknown,
    options?: OutboxPublishOptions,
  ): Promise<string>;
  async publish(
    tx: OutboxTransaction,
    target: string | EventContract<unknown>,
    keyOrPayload: unknown,
    payloadOrOptions?: unknown,
    maybeOptions?: OutboxPublishOptions,
  ): Promise<string> {
    if (isEventContract(target)) {
      const [exchange, routingKey, payload] = await contractTarget(target, keyOrPayload);
      return this.write(tx, exchange, routingKey, payload, payloadOrOptions as OutboxPublishOptions);
    }
    if (typeof target !== 'string')
      throw new OutboxError('outbox.publish(): the exchange must be a string or an event contract');
    return this.write(tx, target, keyOrPayload as string, payloadOrOptions, maybeOptions);
  }

  /** Sends `payload` to `queue` through the default exchange, once `tx` commits. */
  sendToQueue(tx: OutboxTransaction, queue: string, payload: unknown, options?: OutboxPublishOptions): Promise<string> {
    return this.write(tx, '', queue, payload, options);
  }

  private async write(
    tx: OutboxTransaction,
    exchange: string,
    routingKey: string,
    payload: unknown,
    options: OutboxPublishOptions = {},
  ): Promise<string> {
    const sql = sqlOf(tx, 'outbox.publish()');
    if ('messageId' in options) {
      throw new OutboxError(
        "outbox.publish(): messageId is the outbox row's id; pass a correlationId or a header instead",
      );
    }
    const id = randomUUID();
    const properties: Options.Publish = {
      persistent: options.persistent ?? true,
      contentType: options.contentType,
      headers: options.headers,
      messageId: id,
      correlationId: options.correlationId,
      replyTo: options.replyTo,
      expiration: options.expiration,
      priority: options.priority,
      type: options.type,
      appId: options.appId,
    };
    // Encoded before any SQL: a payload that cannot be sent leaves the transaction untouched.
    const content = prepareOutgoing('publish', exchange, routingKey, payload, properties, this.rules);
    const stored = JSON.stringify(withoutUndefined(properties));
    try {
      // LOCK TABLE refuses to run outside a transaction block: the one check that tells a pg
      // client after BEGIN from one in autocommit. ROW EXCLUSIVE is what the INSERT takes anyway.
      await sql(`LOCK TABLE ${this.tables.outbox} IN ROW EXCLUSIVE MODE`);
      await sql(
        `INSERT INTO ${this.tables.outbox} (id, exchange, routing_key, content, properties) VALUES ($1, $2, $3, $4, $5)`,
        [id, exchange, routingKey, content, stored],
      );
    } catch (err) {
      throw this.writeError(err, exchange, routingKey);
    }
    return id;
  }

  private writeError(err: unknown, exchange: string, routingKey: string): Error {
    const target = exchange ? `exchange "${exchange}"` : `queue "${routingKey}"`;
    const state = sqlState(err);
    if (state === NO_ACTIVE_TRANSACTION) {
      return new OutboxError(
        `outbox.publish() to ${target}: tx is not in a transaction (run BEGIN on that client first, or use ` +
          `the tx your driver's transaction() hands you): the message would be sent even if your writes roll back`,
        { cause: err },
      );
    }
    if (state === UNDEFINED_TABLE) {
      return new OutboxError(
        `outbox.publish() to ${target}: the table ${this.tables.outbox} does not exist: run the outbox's migration ` +
          `(OutboxModule.forRoot({ migrate: true }), or the SQL of outboxMigrationSql())`,
        { cause: err },
      );
    }
    return err instanceof Error ? err : new OutboxError(String(err));
  }
}

function withoutUndefined(properties: Options.Publish): Record<string, unknown> {
  return Object.fromEntries(Object.entries(properties).filter(([, v]) => v !== undefined));
}

import { Logger } from '@nestjs/common';
import type { Options } from 'amqplib';
import type { Publisher } from '../publisher/publisher.js';
import { OUTBOX_DEFAULTS } from '../warren.defaults.js';
import type { OutboxDatabase } from './outbox-database.js';
import type { OutboxTables } from './outbox-schema.js';
import { sqlOf } from './sql-transaction.js';

export interface OutboxRelayOptions {
  /** Default true. False: this instance writes to the outbox but leaves publishing to others. */
  enabled?: boolean;
  /** Rows claimed, published and marked sent per transaction. */
  batchSize?: number;
  /** Look for unsent rows this often even without a NOTIFY. */
  pollIntervalMs?: number;
  /** Wait after a failed pass (broker or database away) before the next. */
  retryDelayMs?: number;
  /**
   * Default true: one relay at a time publishes (an advisory lock), so messages go out in order.
   * False: every instance's relay publishes at once, each its own rows (FOR UPDATE SKIP LOCKED),
   * for throughput when order across transactions does not matter.
   */
  ordered?: boolean;
  /** Delete sent rows this long after they were sent. */
  retentionMs?: number;
  /** Inbox records older than this are deleted: a duplicate arriving later runs again. */
  inboxRetentionMs?: number;
  cleanupIntervalMs?: number;
  /**
   * For fault tests: awaited after a pass has claimed its rows and before it publishes them, so a
   * test can kill the process inside the window between commit and confirm.
   */
  hold?: () => Promise<void>;
}

interface OutboxRow {
  seq: string;
  id: string;
  exchange: string;
  routing_key: string;
  content: Buffer | Uint8Array;
  properties: Options.Publish | string;
}

/**
 * Publishes committed outbox rows with publisher confirms, in `seq` order, and marks them sent only
 * after the broker confirmed them, in the same transaction that claimed them: a relay that dies
 * in between leaves them unsent (its lock goes with its connection) and another pass, here or in
 * another instance, publishes them again with the same message id. Woken by the insert trigger's
 * NOTIFY, and polling as a fallback.
 */
export class OutboxRelay {
  private readonly logger = new Logger('WarrenOutbox');
  private readonly options: Required<Omit<OutboxRelayOptions, 'hold'>> & Pick<OutboxRelayOptions, 'hold'>;
  private running = false;
  private stopped = true;
  private again = false;
  private failing = false;
  private wake?: () => void;
  private loop?: Promise<void>;
  private unlisten?: () => Promise<void>;
  private cleanupTimer?: NodeJS.Timeout;

  constructor(
    private readonly database: OutboxDatabase,
    private readonly tables: OutboxTables,
    private readonly publisher: Publisher,
    options: OutboxRelayOptions = {},
    /**
     * Whether the connection has declared its topology. Until then a published row could reach an
     * exchange whose bindings are not there yet (`waitForBroker: false`, the broker just come):
     * confirmed, unroutable, dropped, and marked sent. So the relay publishes nothing before.
     */
    private readonly topologyDeclared: () => boolean = () => true,
  ) {
    this.options = {
      enabled: options.enabled ?? true,
      batchSize: options.batchSize ?? OUTBOX_DEFAULTS.batchSize,
      pollIntervalMs: options.pollIntervalMs ?? OUTBOX_DEFAULTS.pollIntervalMs,
      retryDelayMs: options.retryDelayMs ?? OUTBOX_DEFAULTS.retryDelayMs,
      ordered: options.ordered ?? true,
      retentionMs: options.retentionMs ?? OUTBOX_DEFAULTS.retentionMs,
      inboxRetentionMs: options.inboxRetentionMs ?? OUTBOX_DEFAULTS.inboxRetentionMs,
      cleanupIntervalMs: options.cleanupIntervalMs ?? OUTBOX_DEFAULTS.cleanupIntervalMs,
      hold: options.hold,
    };
  }

  async start(): Promise<void> {
    if (!this.options.enabled || !this.stopped) return;
    this.stopped = false;
    try {
      this.unlisten = await this.database.listen?.(this.tables.channel, () => this.poke());
    } catch (err) {
      this.logger.warn(`outbox relay: LISTEN failed, polling only: ${(err as Error).message}`);
    }
    this.loop = this.run();
    this.cleanupTimer = setInterval(() => void this.cleanup(), this.options.cleanupIntervalMs);
    this.cleanupTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.cleanupTimer);
    this.poke();
    await this.loop;
    await this.unlisten?.().catch(() => undefined);
  }

  /** Asks for a pass now (a commit's NOTIFY, or a test). */
  poke(): void {
    this.again = true;
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.again = false;
      let delay = this.options.pollIntervalMs;
      try {
        const published = await this.pass();
        if (this.failing) this.logger.log('outbox relay: publishing again');
        this.failing = false;
        // A full batch: more are likely waiting.
        if (published >= this.options.batchSize) continue;
      } catch (err) {
        if (!this.failing) this.logger.warn(`outbox relay: pass failed, retrying: ${(err as Error).message}`);
        this.failing = true;
        delay = this.options.retryDelayMs;
      }
      if (this.again || this.stopped) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** One transaction: claim a batch, publish it, mark what the broker confirmed. Returns how many. */
  private async pass(): Promise<number> {
    // Not a failure: the next poke or poll tries again.
    if (!this.topologyDeclared()) return 0;
    const outcome = await this.database.transaction(async (tx): Promise<{ published: number; failure?: unknown }> => {
      const sql = sqlOf(tx, 'outbox relay');
      if (this.options.ordered) {
        const [lock] = await sql<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked', [
          this.tables.lockKey,
        ]);
        // Another instance's relay is publishing; it will take these rows too.
        if (!lock?.locked) return { published: 0 };
      }
      const rows = await sql<OutboxRow>(
        `SELECT seq, id, exchange, routing_key, content, properties FROM ${this.tables.outbox}
         WHERE sent_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [this.options.batchSize],
      );
      if (rows.length === 0) return { published: 0 };
      await this.options.hold?.();
      // Issued in seq order on the one confirm channel; confirms may come back in any order.
      const results = await Promise.allSettled(
        rows.map((row) =>
          this.publisher.publishRaw(row.exchange, row.routing_key, Buffer.from(row.content), propertiesOf(row)),
        ),
      );
      const confirmed = rows.filter((_, i) => results[i].status === 'fulfilled').map((row) => row.seq);
      if (confirmed.length > 0) {
        await sql(`UPDATE ${this.tables.outbox} SET sent_at = now() WHERE seq = ANY($1::bigint[])`, [confirmed]);
      }
      // The confirmed ones are marked when this transaction commits; the rest go in a later pass.
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      return { published: confirmed.length, failure: failed?.reason };
    });
    if (outcome.failure !== undefined) throw outcome.failure;
    return outcome.published;
  }

  private async cleanup(): Promise<void> {
    try {
      await this.database.transaction(async (tx) => {
        const sql = sqlOf(tx, 'outbox cleanup');
        await sql(`DELETE FROM ${this.tables.outbox} WHERE sent_at < now() - $1 * interval '1 millisecond'`, [
          this.options.retentionMs,
        ]);
        await sql(`DELETE FROM ${this.tables.inbox} WHERE received_at < now() - $1 * interval '1 millisecond'`, [
          this.options.inboxRetentionMs,
        ]);
      });
    } catch (err) {
      this.logger.warn(
        `outbox cleanup failed, next in ${this.options.cleanupIntervalMs} ms: ${(err as Error).message}`,
      );
    }
  }
}

function propertiesOf(row: OutboxRow): Options.Publish {
  const properties = typeof row.properties === 'string' ? JSON.parse(row.properties) : row.properties;
  return { ...(properties as Options.Publish), messageId: row.id };
}

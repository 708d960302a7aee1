/**
 * Every default of Warren's options, in one place. The guide's option table is checked against
 * this object by a test (warren.defaults.spec.ts), so the two cannot drift apart.
 */
export const WARREN_DEFAULTS = {
  /** `WarrenModule.forRoot()` without a `name` registers this connection. */
  connection: 'default',
  /** Unacknowledged deliveries per consumer. */
  prefetch: 20,
  heartbeatSeconds: 10,
  reconnectDelayMs: 1000,
  /** Waits before each attempt to consume again after the broker cancelled a consumer; the last repeats. */
  resubscribeDelaysMs: [100, 1000, 5000] as readonly number[],
  connectTimeoutMs: 30_000,
  /** Boot waits for the broker and fails without it: a wrong URL shows at deploy, not later. */
  waitForBroker: true,
  /** Log in with the URL's user and password (SASL PLAIN). */
  auth: 'plain',
  tls: {
    /** A broker certificate that `tls.ca` does not vouch for fails the connection. */
    rejectUnauthorized: true,
  },
  /** Largest message body Warren publishes: 16 MiB. */
  maxMessageBytes: 16 * 1024 * 1024,
  shutdownTimeoutMs: 10_000,
  maxBufferedPublishes: 10_000,
  /** The connections' name in the management UI (`warren-<name>` for a named connection). */
  connectionName: 'warren',
  failure: {
    /** For named queues; server-named (temporary) queues default to `drop`. */
    mode: 'retry',
    retryDelays: [1000, 5000, 30_000] as readonly number[],
    requeueDelayMs: 1000,
    /** One retry queue per distinct delay, as before the delay ladder existed; `delay-ladder` is the other. */
    retryThrough: 'retry-queues' as 'retry-queues' | 'delay-ladder',
  },
  queues: {
    /** RabbitMQ's own default: a classic queue, declared without an `x-queue-type`. */
    type: 'classic',
  },
  delayLadder: {
    /** A second of delay lasts this long: 1000 but in a test that runs a long delay fast. */
    unitMs: 1000,
    /** Level k holds a message for 2^k seconds: 28 levels carry delays up to 2^28 - 1 s, over eight years. */
    levels: 28,
  },
  rpc: {
    replyQueue: 'direct-reply-to',
    timeoutMs: 10_000,
  },
} as const;

/**
 * The defaults of a handler's `batch` option (`@Subscribe(..., { batch: { size } })`), documented in the
 * guide's "Batch handlers". Kept apart from WARREN_DEFAULTS, whose every entry is a WarrenModule option.
 */
export const BATCH_DEFAULTS = {
  /** A batch goes to the handler this long after its first message, full or not. */
  timeoutMs: 50,
} as const;

/**
 * The defaults of `nestjs-warren/outbox` (`OutboxModule.forRoot()`), documented in docs/outbox.md.
 * Kept apart from WARREN_DEFAULTS, whose every entry is a WarrenModule option.
 */
export const OUTBOX_DEFAULTS = {
  /** The outbox and inbox tables' schema. */
  schema: 'public',
  /** Rows one relay pass claims, publishes and marks sent in one transaction. */
  batchSize: 100,
  /** The relay looks for unsent rows this often even without a NOTIFY (a lost one, another writer). */
  pollIntervalMs: 1000,
  /** After a failed pass (broker or database away), the relay waits this long before the next. */
  retryDelayMs: 1000,
  /** Sent rows are deleted once they are this old: 1 hour. */
  retentionMs: 60 * 60 * 1000,
  /** How often the relay deletes sent rows past their retention: 1 minute. */
  cleanupIntervalMs: 60 * 1000,
  /** Inbox records are kept this long, the window in which a duplicate is recognised: 7 days. */
  inboxRetentionMs: 7 * 24 * 60 * 60 * 1000,
} as const;

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
  connectTimeoutMs: 30_000,
  /** Boot waits for the broker and fails without it: a wrong URL shows at deploy, not later. */
  waitForBroker: true,
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
  },
  rpc: {
    replyQueue: 'direct-reply-to',
    timeoutMs: 10_000,
  },
} as const;

import { TopologyError } from '../warren.errors.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';
import { hasDeliveryLimit, MAX_SHORT_STRING_BYTES, type QueueType, queueTypeArguments } from './amqp-rules.js';
import type { BindingDeclaration, ExchangeDeclaration, QueueDeclaration } from './topology.js';

/**
 * What happens to a message whose handler throws:
 * - `retry`: back to the queue after each delay of `retryDelays` (through shared per-delay retry
 *   queues with a message TTL, so it works on a stock broker), then to the dead-letter queue;
 * - `dead-letter`: straight to the dead-letter queue;
 * - `requeue`: back to the queue after `requeueDelayMs` (no limit: pair it with a quorum queue's
 *   `deliveryLimit`);
 * - `drop`: acked and logged;
 * - `manual`: the handler acks or nacks through its WarrenContext; if it throws without doing
 *   so, the message is rejected without requeue.
 * Poison messages (undecodable body, failed validation) never retry: they go to the dead-letter
 * queue when there is one, otherwise they are rejected without requeue.
 */
export const FAILURE_MODES = ['retry', 'dead-letter', 'requeue', 'drop', 'manual'] as const;
export type FailureMode = (typeof FAILURE_MODES)[number];

export interface FailureOptions {
  mode?: FailureMode;
  /** Delays in milliseconds before the 2nd, 3rd, ... attempt. Default 1 s, 5 s, 30 s. */
  retryDelays?: number[];
  /** Dead-letter queue. Default `<queue>.dlq`. */
  deadLetterQueue?: string;
  /** Send dead letters to this exchange (routing key: the queue's name) instead of a queue Warren declares. */
  deadLetterExchange?: string;
  /** Pause before a `requeue`, so a failing handler cannot spin. Default 1000. */
  requeueDelayMs?: number;
  /**
   * How a `retry` waits: `retry-queues` (default), one `warren.retry-<delay>ms` queue per distinct
   * delay; `delay-ladder`, through the delay ladder of delayed delivery (a bounded set of queues
   * whatever the delays, each delay rounded up to whole seconds). Not for a quorum queue, whose
   * retries wait in quorum queues so that a node's loss cannot strand them.
   */
  retryThrough?: RetryThrough;
}

export const RETRY_THROUGH = ['retry-queues', 'delay-ladder'] as const;
export type RetryThrough = (typeof RETRY_THROUGH)[number];

export interface FailurePolicy {
  mode: FailureMode;
  retryDelays: number[];
  /** Where dead letters go: [exchange, routing key]; undefined when the queue has none. */
  deadLetter?: { exchange: string; routingKey: string };
  requeueDelayMs: number;
  /**
   * `quorum` when the retries go through the quorum retry queues (a quorum queue's): see
   * `retryQueueName`. Undefined for the classic ones.
   */
  retryQueueType?: 'quorum';
  /** `delay-ladder` when the retries wait in the delay ladder instead of retry queues. */
  retryThrough?: 'delay-ladder';
  /** What the policy needs next to the consumer's own queue: retry exchanges and queues, the dead-letter queue. */
  queues: QueueDeclaration[];
  exchanges: ExchangeDeclaration[];
  bindings: BindingDeclaration[];
}

/** What a failed delivery of a stream may lead to: nothing that appends it to the stream again. */
const STREAM_MODES: readonly FailureMode[] = ['dead-letter', 'drop', 'manual'];

/** Delays before the 2nd, 3rd and 4th attempt of the `retry` mode. */
export const DEFAULT_RETRY_DELAYS: readonly number[] = WARREN_DEFAULTS.failure.retryDelays;

/** Headers Warren reads and writes on retried and dead-lettered messages. */
export const ATTEMPT_HEADER = 'x-warren-attempt';
export const FAILURE_HEADERS = {
  reason: 'x-warren-failure-reason',
  errorName: 'x-warren-error-name',
  errorMessage: 'x-warren-error-message',
  attempts: 'x-warren-attempts',
  queue: 'x-warren-original-queue',
  exchange: 'x-warren-original-exchange',
  routingKey: 'x-warren-original-routing-key',
  failedAt: 'x-warren-failed-at',
  /** Why the message's own headers were left off its dead letter (they could not be sent again). */
  droppedHeaders: 'x-warren-dropped-headers',
} as const;

/**
 * The exchange and queue that hold a retried message for `delay` ms: one pair per delay, shared by
 * every queue of every app on the broker. The exchange is a fanout, so the copy keeps the routing
 * key it is published with — the name of the queue it came from — and the queue's dead-letter
 * exchange (the default exchange) takes it back there when its TTL expires.
 *
 * A quorum queue's retries go through quorum retry queues of their own names
 * (`warren.retry-<delay>ms.quorum`): a classic one lives on one node, and on a cluster the loss of
 * that node would leave every consumer that declares it unable to consume again ("home node down")
 * until it returns. Their own names, because apps already running keep declaring the classic ones.
 */
export function retryQueueName(delay: number, type?: 'quorum'): string {
  return type === 'quorum' ? `warren.retry-${delay}ms.quorum` : `warren.retry-${delay}ms`;
}

/** The dead-letter queue a queue gets when its handler names none. */
export function deadLetterQueueName(queue: string): string {
  return `${queue}.dlq`;
}

/**
 * The policy of one consumer, from its handler's option over the module's default. Temporary
 * (server-named) queues default to `drop`: their name changes with every connection, so no retry
 * queue can route back to them, and nothing would ever read a dead-letter queue named after them.
 */
export function resolveFailurePolicy(
  by: string,
  queue: Required<QueueDeclaration>,
  handler: FailureMode | FailureOptions | undefined,
  moduleDefault: FailureOptions | undefined,
  types: { queueType?: QueueType; deadLetterQueueType?: QueueType } = {},
): FailurePolicy {
  // A quorum queue's failure queues are quorum queues too: a classic one lives on one node, and
  // the consumer could not be declared again (nor consume) on a cluster that lost that node.
  const quorum = types.queueType === 'quorum' && queue.durable;
  const deadLetterQueueType = quorum ? 'quorum' : types.deadLetterQueueType;
  const own = typeof handler === 'string' ? { mode: handler } : (handler ?? {});
  const options: FailureOptions = { ...moduleDefault, ...own };
  const temporary = queue.name === '';
  const stream = types.queueType === 'stream';
  if (stream && options.mode !== undefined && !STREAM_MODES.includes(options.mode)) {
    // The module's default yields to the stream's own; the handler's own choice is a mistake.
    if (own.mode !== undefined) {
      throw new TopologyError(
        `${by}: failure mode "${own.mode}" cannot work on a stream, which keeps every message for every reader ` +
          `(a retry or requeue would append it again for all of them); use ${STREAM_MODES.join(', ')}`,
      );
    }
    options.mode = undefined;
  }
  const mode = options.mode ?? (temporary ? 'drop' : stream ? 'dead-letter' : WARREN_DEFAULTS.failure.mode);
  if (!FAILURE_MODES.includes(mode)) {
    throw new TopologyError(`${by}: failure mode "${String(mode)}" is not one of ${FAILURE_MODES.join(', ')}`);
  }
  const retryDelays = options.retryDelays ?? DEFAULT_RETRY_DELAYS;
  if (!Array.isArray(retryDelays) || retryDelays.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new TopologyError(`${by}: retryDelays must be positive whole numbers of milliseconds`);
  }
  const requeueDelayMs = options.requeueDelayMs ?? WARREN_DEFAULTS.failure.requeueDelayMs;
  const through = options.retryThrough ?? WARREN_DEFAULTS.failure.retryThrough;
  if (!RETRY_THROUGH.includes(through)) {
    throw new TopologyError(
      `${by}: failure.retryThrough "${String(through)}" is not one of ${RETRY_THROUGH.join(', ')}`,
    );
  }
  // The ladder's queues are classic, on one node: a quorum queue keeps its quorum retry queues. The
  // module's default yields to that; the handler's own choice is a mistake.
  if (through === 'delay-ladder' && quorum && own.retryThrough === 'delay-ladder') {
    throw new TopologyError(
      `${by}: failure.retryThrough "delay-ladder" cannot serve a quorum queue: the ladder's queues are classic, ` +
        `on one node, and a retry waiting there would be stranded by that node's loss; leave it to the quorum retry queues`,
    );
  }
  const ladder = mode === 'retry' && through === 'delay-ladder' && !quorum;
  if (temporary && (mode === 'retry' || mode === 'dead-letter') && !options.deadLetterExchange) {
    throw new TopologyError(
      `${by}: failure mode "${mode}" needs a named queue (a server-named queue changes name on every reconnect); ` +
        `give the handler a queue, or a deadLetterExchange`,
    );
  }
  const queues: QueueDeclaration[] = [];
  let deadLetter: FailurePolicy['deadLetter'];
  const durable = queue.durable;
  if (options.deadLetterExchange) {
    deadLetter = { exchange: options.deadLetterExchange, routingKey: queue.name };
  } else if (mode === 'retry' || mode === 'dead-letter' || hasDeliveryLimit(queue.arguments)) {
    const name = options.deadLetterQueue ?? deadLetterQueueName(queue.name);
    const bytes = Buffer.byteLength(name);
    // The queue's own name fits; the one derived from it may not, and the error must say which it is.
    if (options.deadLetterQueue === undefined && bytes > MAX_SHORT_STRING_BYTES) {
      const most = MAX_SHORT_STRING_BYTES - Buffer.byteLength(deadLetterQueueName(''));
      throw new TopologyError(
        `${by}: the dead-letter queue name "${name.slice(0, 40)}…" (queue "${queue.name.slice(0, 40)}…" + ".dlq") ` +
          `is ${bytes} bytes, over RabbitMQ's limit of ${MAX_SHORT_STRING_BYTES}: shorten the queue's name to at ` +
          `most ${most} bytes, or name a dead-letter queue of its own (failure.deadLetterQueue)`,
      );
    }
    deadLetter = { exchange: '', routingKey: name };
    // The module's default type where it applies (named and durable), quorum for a quorum queue's;
    // a quorum dead-letter queue keeps what failed through the loss of a node.
    const typed = durable && deadLetterQueueType ? queueTypeArguments({ queueType: deadLetterQueueType }) : undefined;
    queues.push({ name, durable, ...(typed && { arguments: typed }) });
  }
  const exchanges: ExchangeDeclaration[] = [];
  const bindings: BindingDeclaration[] = [];
  if (mode === 'retry' && !ladder) {
    for (const delay of new Set(retryDelays)) {
      const name = retryQueueName(delay, quorum ? 'quorum' : undefined);
      exchanges.push({ name, type: 'fanout', durable: true });
      // A per-queue TTL expires messages in arrival order, so each delay keeps its own queue.
      const type = quorum ? { 'x-queue-type': 'quorum' } : {};
      queues.push({
        name,
        durable: true,
        arguments: { ...type, 'x-message-ttl': delay, 'x-dead-letter-exchange': '' },
      });
      bindings.push({ exchange: name, queue: name, routingKey: '' });
    }
  }
  return {
    mode,
    retryDelays: mode === 'retry' ? retryDelays : [],
    deadLetter,
    requeueDelayMs,
    ...(mode === 'retry' && quorum ? { retryQueueType: 'quorum' as const } : {}),
    ...(ladder ? { retryThrough: 'delay-ladder' as const } : {}),
    queues,
    exchanges,
    bindings,
  };
}

import type { QueueType } from '../topology/amqp-rules.js';
import { queueTypeProblem } from '../topology/amqp-rules.js';
import type { ConsumerQueueSpec } from '../topology/consumer-queue.js';
import { WarrenDecoratorError } from '../warren.errors.js';

/** Queue options every handler decorator shares. */
export interface QueueOptions {
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  /** Queue arguments, e.g. `{ 'x-message-ttl': 60000 }`. */
  arguments?: Record<string, unknown>;
  /** `quorum` for a replicated quorum queue (durable, not exclusive). Default: RabbitMQ's classic queue. */
  queueType?: QueueType;
  /**
   * Quorum queues: deliveries of one message before the broker gives up on it and dead-letters it
   * (to the handler's dead-letter queue, `<queue>.dlq` unless `failure` names another, or to its
   * `failure.deadLetterExchange`). Bounds the `requeue` failure mode.
   */
  deliveryLimit?: number;
}

/**
 * The queue a handler's options describe, as recorded for the topology builder, which derives the
 * queue's arguments once the failure policy is known. What RabbitMQ would refuse fails here
 * already, so that a decorator's mistake surfaces when its class is defined.
 */
export function queueSpec(who: string, name: string, options: QueueOptions): ConsumerQueueSpec {
  const problem = queueTypeProblem(options);
  if (problem) throw new WarrenDecoratorError(`${who}: ${problem}`);
  return {
    queue: {
      name,
      durable: options.durable,
      exclusive: options.exclusive,
      autoDelete: options.autoDelete,
      arguments: options.arguments,
    },
    queueType: options.queueType,
    deliveryLimit: options.deliveryLimit,
  };
}

import {
  queueTypeProblem,
  type StreamOffset,
  TYPED_QUEUE_OPTION_KEYS,
  type TypedQueueOptions,
} from '../topology/amqp-rules.js';
import { offsetProblem } from '../topology/consumer-queue.js';
import type { ConsumerQueueSpec } from '../topology/consumer-queue.js';
import { WarrenDecoratorError } from '../warren.errors.js';

/**
 * Queue options every handler decorator shares. The typed options (`queueType`, `maxLength`, …)
 * are checked against the queue's type; `arguments` is passed to the broker as it is.
 */
export interface QueueOptions extends TypedQueueOptions {
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  /** Queue arguments Warren has no typed option for, e.g. `{ 'x-expires': 60000 }`. */
  arguments?: Record<string, unknown>;
  /**
   * Streams: where this consumer starts reading when it has no stored offset (see the module's
   * `streams.offsetStore`): `first` (a backfill), `last`, `next` (default), an offset, or a Date.
   */
  offset?: StreamOffset;
}

/**
 * The queue a handler's options describe, as recorded for the topology builder, which derives the
 * queue's arguments once the failure policy and the module's default queue type are known. What
 * RabbitMQ would refuse fails here already where it can be known, so that a decorator's mistake
 * surfaces when its class is defined.
 */
export function queueSpec(who: string, name: string, options: QueueOptions): ConsumerQueueSpec {
  const problem = queueTypeProblem({ ...options, name }) ?? offsetProblem(options.offset, options.queueType, false);
  if (problem) throw new WarrenDecoratorError(`${who}: ${problem}`);
  const spec: ConsumerQueueSpec = {
    queue: {
      name,
      durable: options.durable,
      exclusive: options.exclusive,
      autoDelete: options.autoDelete,
      arguments: options.arguments,
    },
  };
  if (options.offset !== undefined) spec.offset = options.offset;
  for (const key of TYPED_QUEUE_OPTION_KEYS)
    if (options[key] !== undefined) Object.assign(spec, { [key]: options[key] });
  return spec;
}

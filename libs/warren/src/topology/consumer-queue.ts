import { TopologyError } from '../warren.errors.js';
import {
  deadLetterArguments,
  type QueueType,
  type StreamOffset,
  streamOffsetProblem,
  queueTypeArguments,
  queueTypeProblem,
  TYPED_QUEUE_OPTION_KEYS,
  type TypedQueueOptions,
} from './amqp-rules.js';
import type { FailurePolicy } from './failure-policy.js';
import type { QueueDeclaration } from './topology.js';

/** A consumer's own queue as its handler described it: the declaration and the typed queue options. */
export interface ConsumerQueueSpec extends TypedQueueOptions {
  queue: QueueDeclaration;
  /** Streams: where a consumer with no stored offset starts reading. Default `next`. */
  offset?: StreamOffset;
}

/**
 * The module-wide default type (`WarrenModule.forRoot({ queues: { type } })`) applies to the queues
 * meant to outlive the app: named, durable, neither exclusive nor auto-delete, and of no type of
 * their own (no `queueType`, no `x-queue-type` argument). A temporary queue stays classic.
 */
export function takesDefaultType(queue: QueueDeclaration, queueType?: QueueType): boolean {
  return (
    queueType === undefined &&
    queue.arguments?.['x-queue-type'] === undefined &&
    queue.name !== '' &&
    queue.durable !== false &&
    queue.exclusive !== true &&
    queue.autoDelete !== true
  );
}

/** A queue of the module options' topology with the module's default type, where it applies. */
export function withDefaultType(queue: QueueDeclaration, defaultType: QueueType | undefined): QueueDeclaration {
  if (!defaultType || !takesDefaultType(queue)) return queue;
  return { ...queue, arguments: { ...queue.arguments, 'x-queue-type': defaultType } };
}

/** The consumer's queue with the arguments of its type and options; refuses what RabbitMQ would. */
export function typedQueue(spec: ConsumerQueueSpec, by: string, defaultType?: QueueType): QueueDeclaration {
  const queueType = takesDefaultType(spec.queue, spec.queueType) ? defaultType : spec.queueType;
  const { queue } = spec;
  const options: TypedQueueOptions = {};
  for (const key of TYPED_QUEUE_OPTION_KEYS) if (spec[key] !== undefined) Object.assign(options, { [key]: spec[key] });
  const problem = queueTypeProblem({ ...queue, ...options, queueType }, true) ?? offsetProblem(spec.offset, queueType);
  if (problem) throw new TopologyError(`${by}: ${problem}`);
  const args = { ...queue.arguments, ...queueTypeArguments({ ...options, queueType }) };
  return { ...queue, arguments: args };
}

/**
 * A queue with a delivery limit is dead-lettered by the broker itself when it gives up on a
 * message, through the queue's own dead-letter arguments. They must name the target the failure
 * policy declared, or what the broker gives up on is routed nowhere and lost. Dead-letter
 * arguments the handler wrote itself are kept.
 */
export function withBrokerDeadLettering(
  queue: QueueDeclaration,
  deliveryLimit: number | undefined,
  deadLetter: FailurePolicy['deadLetter'],
): QueueDeclaration {
  if (deliveryLimit === undefined || !deadLetter) return queue;
  const args: Record<string, unknown> = { ...queue.arguments };
  for (const [key, value] of Object.entries(deadLetterArguments(deadLetter.exchange, deadLetter.routingKey))) {
    args[key] ??= value;
  }
  return { ...queue, arguments: args };
}

/** Why a consumer of a queue of `queueType` cannot start at `offset`, or null; undefined type: not known yet. */
export function offsetProblem(offset: unknown, queueType: unknown, typeKnown = true): string | null {
  if (offset === undefined) return null;
  const problem = streamOffsetProblem(offset);
  if (problem) return problem;
  if (queueType !== 'stream' && (queueType !== undefined || typeKnown)) return 'offset needs queueType "stream"';
  return null;
}

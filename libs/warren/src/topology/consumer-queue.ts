import { TopologyError } from '../warren.errors.js';
import { deadLetterArguments, type QueueType, queueTypeArguments, queueTypeProblem } from './amqp-rules.js';
import type { FailurePolicy } from './failure-policy.js';
import type { QueueDeclaration } from './topology.js';

/** A consumer's own queue as its handler described it: the declaration and the queue type options. */
export interface ConsumerQueueSpec {
  queue: QueueDeclaration;
  queueType?: QueueType;
  /** Quorum queues: deliveries of one message before the broker gives up on it and dead-letters it. */
  deliveryLimit?: number;
}

/** The consumer's queue with the arguments of its queue type; refuses what RabbitMQ would. */
export function typedQueue(spec: ConsumerQueueSpec, by: string): QueueDeclaration {
  const problem = queueTypeProblem({ ...spec.queue, queueType: spec.queueType, deliveryLimit: spec.deliveryLimit });
  if (problem) throw new TopologyError(`${by}: ${problem}`);
  const args = { ...spec.queue.arguments, ...queueTypeArguments(spec.queueType, spec.deliveryLimit) };
  return { ...spec.queue, arguments: args };
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

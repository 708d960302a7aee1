import type { BatchOptions } from '../topology/batch.js';
import type { ConsumerSpec } from '../topology/topology-builder.js';
import type { FailureMode, FailureOptions } from '../topology/failure-policy.js';
import { configuredMetadata, type ConfiguredSource, isConfiguredSource } from './configured-metadata.js';
import { addHandlerMetadata, type ConnectionOption, decoratorWho, methodName } from './handler-metadata.js';
import {
  requireBatch,
  requireConcurrency,
  requireConnection,
  requireName,
  requireOptions,
  requirePrefetch,
} from './option-guards.js';
import { queueSpec, type QueueOptions } from './queue-options.js';

export interface ConsumeOptions extends QueueOptions, ConnectionOption {
  /** What happens when the handler throws. Default: retry (1 s, 5 s, 30 s), then dead-letter. */
  failure?: FailureMode | FailureOptions;
  /** Unacknowledged deliveries this handler holds at once; 1 gives the tutorials' fair dispatch. */
  prefetch?: number;
  /**
   * Handler invocations at once on this instance, while `prefetch` keeps more deliveries
   * buffered. Default: the module's `concurrency`, else as many as the prefetch. 1 handles the
   * queue in order.
   */
  concurrency?: number;
  /**
   * Batch handler: the method receives `(payloads, contexts)`, up to `size` messages at once, or
   * fewer once `timeoutMs` (default 50) has passed since the first. See the guide's "Batch handlers".
   */
  batch?: BatchOptions;
}

/** Builds the consumer spec of a work queue; `who` names the caller in errors (see decoratorWho). */
export function consumeSpec(who: string, queue: unknown, rawOptions: unknown): ConsumerSpec {
  const name = requireName(who, 'queue', queue);
  const options = requireOptions(who, rawOptions) as ConsumeOptions;
  return {
    bindingKeys: [],
    ...queueSpec(who, name, options),
    prefetch: requirePrefetch(who, options.prefetch),
    concurrency: requireConcurrency(who, options.concurrency),
    ...(options.batch !== undefined && { batch: requireBatch(who, options.batch) }),
    failure: options.failure,
  };
}

/** `@Consume({ config: 'jobs' })`: the queue and options from the module options' `handlers.jobs`, over these. */
export interface ConfiguredConsume extends ConfiguredSource, ConsumeOptions {
  queue?: string;
}

/**
 * Consumes a work queue on the default exchange: `@Consume('task_queue', { prefetch: 1 })`.
 * Instances of the app compete for its messages. `@Consume({ config: 'jobs' })` takes the queue
 * and options from configuration at boot (the module options' `handlers.jobs`).
 */
export function Consume(queue: string, options?: ConsumeOptions): MethodDecorator;
export function Consume(configured: ConfiguredConsume): MethodDecorator;
export function Consume(queue: string | ConfiguredConsume, options?: ConsumeOptions): MethodDecorator {
  return (target, key) => {
    if (isConfiguredSource(queue)) {
      addHandlerMetadata(target, key, configuredMetadata('consume', 'Consume', methodName(target, key), queue));
      return;
    }
    const who = decoratorWho('Consume', methodName(target, key));
    addHandlerMetadata(target, key, {
      kind: 'consume',
      consumer: consumeSpec(who, queue, options),
      connection: requireConnection(who, options),
    });
  };
}

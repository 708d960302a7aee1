import type { ConsumerSpec } from '../topology/topology-builder.js';
import type { FailureMode, FailureOptions } from '../topology/failure-policy.js';
import {
  addHandlerMetadata,
  type ConnectionOption,
  methodName,
  queueDeclaration,
  type QueueOptions,
  requireConnection,
  requireName,
  requireOptions,
  requirePrefetch,
} from './handler-metadata.js';

export interface ConsumeOptions extends QueueOptions, ConnectionOption {
  /** What happens when the handler throws. Default: retry (1 s, 5 s, 30 s), then dead-letter. */
  failure?: FailureMode | FailureOptions;
  /** Unacknowledged deliveries this handler holds at once; 1 gives the tutorials' fair dispatch. */
  prefetch?: number;
}

export function consumeSpec(where: string, queue: unknown, rawOptions: unknown, decorator = 'Consume'): ConsumerSpec {
  const name = requireName(decorator, where, 'queue', queue);
  const options = requireOptions(decorator, where, rawOptions) as ConsumeOptions;
  return {
    bindingKeys: [],
    queue: queueDeclaration(decorator, where, name, options),
    prefetch: requirePrefetch(decorator, where, options.prefetch),
    failure: options.failure,
  };
}

/**
 * Consumes a work queue on the default exchange: `@Consume('task_queue', { prefetch: 1 })`.
 * Instances of the app compete for its messages.
 */
export function Consume(queue: string, options?: ConsumeOptions): MethodDecorator {
  return (target, key) => {
    const where = methodName(target, key);
    addHandlerMetadata(target, key, {
      kind: 'consume',
      consumer: consumeSpec(where, queue, options),
      connection: requireConnection('Consume', where, options),
    });
  };
}

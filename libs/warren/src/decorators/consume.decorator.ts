import type { ConsumerSpec } from '../topology/topology-builder.js';
import { addHandlerMetadata, methodName, requireName, requireOptions, requirePrefetch } from './handler-metadata.js';

export interface ConsumeOptions {
  /** Default true: the queue survives a broker restart. */
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  arguments?: Record<string, unknown>;
  /** Unacknowledged deliveries this handler holds at once; 1 gives the tutorials' fair dispatch. */
  prefetch?: number;
}

export function consumeSpec(where: string, queue: unknown, rawOptions: unknown, decorator = 'Consume'): ConsumerSpec {
  const name = requireName(decorator, where, 'queue', queue);
  const options = requireOptions(decorator, where, rawOptions) as ConsumeOptions;
  return {
    bindingKeys: [],
    queue: {
      name,
      durable: options.durable,
      exclusive: options.exclusive,
      autoDelete: options.autoDelete,
      arguments: options.arguments,
    },
    prefetch: requirePrefetch(decorator, where, options.prefetch),
  };
}

/**
 * Consumes a work queue on the default exchange: `@Consume('task_queue', { prefetch: 1 })`.
 * Instances of the app compete for its messages.
 */
export function Consume(queue: string, options?: ConsumeOptions): MethodDecorator {
  return (target, key) => {
    addHandlerMetadata(target, key, {
      kind: 'consume',
      consumer: consumeSpec(methodName(target, key), queue, options),
    });
  };
}

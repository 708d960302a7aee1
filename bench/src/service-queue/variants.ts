// The service-queue scenario's variants and routing, shared by its driver and its trial process.
export const SERVICE_QUEUE_VARIANTS = ['eight-queues', 'eight-queues-split', 'service-queue'] as const;
export type ServiceQueueVariant = (typeof SERVICE_QUEUE_VARIANTS)[number];

export const SERVICE_QUEUE_LABELS: Record<ServiceQueueVariant, string> = {
  'eight-queues': 'Warren, 8 queues, one handler each',
  'eight-queues-split': 'Warren, 8 queues, the prefetch split 8 ways',
  'service-queue': 'Warren, one service queue, 8 handlers',
};

export const HANDLERS = 8;

/** Each consumer's prefetch: the bench's, or (`eight-queues-split`) an eighth of it, the same in flight in all as the service queue. */
export function prefetchOf(variant: ServiceQueueVariant, prefetch: number): number {
  return variant === 'eight-queues-split' ? Math.max(1, Math.round(prefetch / HANDLERS)) : prefetch;
}

/** Message `id` goes to handler `id % HANDLERS`, by this routing key. */
export function keyOf(handler: number): string {
  return `bench.kind${handler}`;
}

// The batch scenario's variants, shared by its driver and its trial process.
export const BATCH_VARIANTS = [
  'single',
  'batch-10',
  'batch-100',
  'golevelup-single',
  'golevelup-10',
  'golevelup-100',
] as const;
export type BatchVariant = (typeof BATCH_VARIANTS)[number];

export const BATCH_LABELS: Record<BatchVariant, string> = {
  single: 'Warren, one message per call',
  'batch-10': 'Warren, batch: { size: 10 }',
  'batch-100': 'Warren, batch: { size: 100 }',
  'golevelup-single': 'golevelup, one message per call',
  'golevelup-10': 'golevelup, batchOptions: { size: 10 }',
  'golevelup-100': 'golevelup, batchOptions: { size: 100 }',
};

/** How long a partial batch waits for more messages, for both libraries. */
export const BATCH_TIMEOUT_MS = 20;

/** 0: one message per call. */
export function batchSizeOf(variant: BatchVariant): number {
  return variant.endsWith('100') ? 100 : variant.endsWith('10') ? 10 : 0;
}

/**
 * The prefetch every variant gets: the bench's, or twice the batch size if that is higher, so the
 * next batch fills while the handler works on this one (Warren's own default for a batch handler).
 */
export function batchPrefetch(prefetch: number, size: number): number {
  return Math.max(prefetch, 2 * size);
}

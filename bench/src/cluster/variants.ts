// The cluster scenario's variants, shared by its driver and its trial process.
export const CLUSTER_VARIANTS = ['raw-classic', 'raw-quorum', 'warren-classic', 'warren-quorum'] as const;
export type ClusterVariant = (typeof CLUSTER_VARIANTS)[number];

export const CLUSTER_LABELS: Record<ClusterVariant, string> = {
  'raw-classic': 'raw amqplib, classic queue',
  'raw-quorum': 'raw amqplib, quorum queue',
  'warren-classic': 'Warren, classic queue',
  'warren-quorum': 'Warren, quorum queue',
};

export function queueTypeOf(variant: ClusterVariant): 'classic' | 'quorum' {
  return variant.endsWith('quorum') ? 'quorum' : 'classic';
}

// The scenarios that run apart from the systems' matrix, each in its own folder, each with a flag
// of `npm run bench` (`--batch`, `--service-queue`, `--cluster`, `--delayed`, `--memory-broker`,
// `--unused-features`).
import type { BrokerAdmin } from '../broker.js';
import { runBatchBench } from '../batch/run.js';
import { runClusterBench } from '../cluster/run.js';
import { runDelayedBench, type DelayedOptions } from '../delayed/run.js';
import { runMemoryBrokerBench } from '../memory-broker/run.js';
import { runServiceQueueBench } from '../service-queue/run.js';
import { runUnusedFeaturesBench, type UnusedSizes } from '../unused-features/run.js';
import type { SideBench, SideContext } from './side.js';

export const SIDE_SCENARIOS = [
  'batch',
  'service-queue',
  'cluster',
  'delayed',
  'memory-broker',
  'unused-features',
] as const;
export type SideScenario = (typeof SIDE_SCENARIOS)[number];

/** Those that bring a broker of their own (a cluster, a fresh node) rather than use RABBITMQ_URL's. */
export const OWN_BROKER: readonly SideScenario[] = ['cluster', 'delayed'];

export interface SideSizes {
  batch: number;
  serviceQueue: number;
  cluster: number;
  delayed: DelayedOptions;
  memoryBrokerRounds: number;
  /** The matrix's pub/sub and RPC sizes. */
  unusedFeatures: UnusedSizes;
}

export function runSideScenario(
  scenario: SideScenario,
  ctx: SideContext,
  admin: BrokerAdmin | undefined,
  sizes: SideSizes,
): Promise<SideBench> {
  const broker = () => {
    if (!admin) throw new Error(`the ${scenario} scenario needs the bench's broker`);
    return admin;
  };
  switch (scenario) {
    case 'batch':
      return runBatchBench(ctx, broker(), sizes.batch);
    case 'service-queue':
      return runServiceQueueBench(ctx, broker(), sizes.serviceQueue);
    case 'cluster':
      return runClusterBench(ctx, sizes.cluster);
    case 'delayed':
      return runDelayedBench(ctx, sizes.delayed);
    case 'memory-broker':
      return runMemoryBrokerBench(ctx, broker(), sizes.memoryBrokerRounds);
    case 'unused-features':
      return runUnusedFeaturesBench(ctx, broker(), sizes.unusedFeatures);
  }
}

import type { BootResult, BrokerSpec, PubsubResult, RpcResult, Scenario } from './harness.js';

export const SYSTEMS = [
  'raw',
  'raw-1conn',
  'warren',
  'warren-exclusive',
  'warren-otel',
  'warren-batch',
  'golevelup',
  'nest-rmq',
] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** The system every "× raw" ratio is taken against. */
export const REFERENCE: SystemName = 'raw';

/** How the tables name each system. */
export const LABELS: Record<SystemName, string> = {
  raw: 'raw amqplib, 2 connections (limit)',
  'raw-1conn': 'raw amqplib, 1 connection',
  warren: 'Warren (direct reply-to)',
  'warren-exclusive': 'Warren (exclusive reply queue)',
  'warren-otel': 'Warren, OpenTelemetry SDK registered',
  'warren-batch': 'Warren, batch handler (100 per call)',
  golevelup: '@golevelup/nestjs-rabbitmq',
  'nest-rmq': 'NestJS RMQ transport',
};

/** Warren's reply mode only shows where it matters: in the RPC tables. */
export function label(system: SystemName, scenario?: Scenario): string {
  if (system === 'warren' && scenario === 'store') return 'Warren, one message per call';
  return system === 'warren' && (scenario === 'pubsub' || scenario === 'boot') ? 'Warren' : LABELS[system];
}

/** The reply mode only matters to RPC: the other scenarios run Warren once. */
export function runsScenario(system: SystemName, scenario: Scenario): boolean {
  // The store scenario is Warren's batch handler against its single-message handler.
  if (scenario === 'store') return system === 'warren' || system === 'warren-batch';
  if (system === 'warren-batch') return false;
  return system !== 'warren-exclusive' || scenario === 'rpc-seq' || scenario === 'rpc-conc';
}

export interface TrialConfig {
  system: SystemName;
  spec: BrokerSpec;
  n: number;
  inFlight: number;
}

export interface TrialOutput {
  system: SystemName;
  scenario: Scenario;
  result: PubsubResult | RpcResult | BootResult;
  setupMs: number;
  teardownMs: number;
  /** Resident set at the end of the scenario, and its peak over the whole process. */
  rssMb: number;
  maxRssMb: number;
}

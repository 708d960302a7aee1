// The unused-features scenario's variants, workloads and what each app must have wired, shared by
// its driver, its trial process and their spec.
import type { Scenario } from '../harness.js';

export const UNUSED_VARIANTS = ['plain', 'featured'] as const;
export type UnusedVariant = (typeof UNUSED_VARIANTS)[number];

export const UNUSED_LABELS: Record<UnusedVariant, string> = {
  plain: 'plain app',
  featured: 'app with unused features',
};

/** The matrix's workloads, with its sizes: pub/sub, sequential RPC, RPC with calls in flight. */
export const UNUSED_WORKLOADS = ['pubsub', 'rpc-seq', 'rpc-conc'] as const satisfies readonly Scenario[];
export type UnusedWorkload = (typeof UNUSED_WORKLOADS)[number];

/** The named connection the featured app registers beside the default one. */
export const OTHER_CONNECTION = 'other';

/**
 * The featured app's idle handlers, each on a queue of its own (`handlerQueue(spec, i)`, so the
 * driver's clean-up deletes them): on the default connection, two with enhancers and two with
 * schema-checked contracts; on the named connection, two more.
 */
export const IDLE_QUEUES = 6;

/** What a trial's app had wired once booted (from describeTopology): handlers per connection, and those with a schema. */
export interface Wiring {
  handlers: Record<string, number>;
  withSchema: number;
  /** Whether `import('@opentelemetry/api')` succeeded in the trial process. */
  openTelemetryImportable: boolean;
}

/** What each variant's app must have: the plain one only the measured handler and no @opentelemetry/api. */
export function expectedWiring(variant: UnusedVariant): Wiring {
  return variant === 'plain'
    ? { handlers: { default: 1 }, withSchema: 0, openTelemetryImportable: false }
    : { handlers: { default: 5, [OTHER_CONNECTION]: 2 }, withSchema: 2, openTelemetryImportable: true };
}

/** Where a trial's wiring differs from its variant's, in words; empty when it does not. */
export function wiringProblems(variant: UnusedVariant, wiring: Wiring): string[] {
  const want = expectedWiring(variant);
  const out: string[] = [];
  const names = new Set([...Object.keys(want.handlers), ...Object.keys(wiring.handlers)]);
  for (const name of [...names].sort()) {
    const [got, expected] = [wiring.handlers[name] ?? 0, want.handlers[name] ?? 0];
    if (got !== expected) out.push(`connection "${name}" had ${got} handler(s), not ${expected}`);
  }
  if (wiring.withSchema !== want.withSchema)
    out.push(`${wiring.withSchema} handler(s) had a schema, not ${want.withSchema}`);
  if (wiring.openTelemetryImportable !== want.openTelemetryImportable)
    out.push(`@opentelemetry/api was ${wiring.openTelemetryImportable ? '' : 'not '}importable`);
  return out;
}

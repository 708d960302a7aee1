// One trial of the unused-features scenario in a fresh process: the matrix's Warren app (the
// same adapter, handler and measurement as its `warren` system), plain or with the features of
// featured.ts, running one of the matrix's workloads. The plain app's process cannot import
// @opentelemetry/api (a resolve hook refuses it, as if it were not installed); the featured one
// can, and registers no SDK. Both say what they had wired, which the driver checks.
import { register } from 'node:module';
import { describeTopology } from 'nestjs-warren';
import { WarrenAdapter } from '../adapters/warren.js';
import type { BrokerSpec } from '../harness.js';
import { measure } from '../measure.js';
import { reportResult, trialFailed } from '../side/side.js';
import type { TrialConfig, TrialOutput } from '../systems.js';
import { featuredExtras } from './featured.js';
import type { UnusedVariant, Wiring } from './variants.js';

export interface UnusedTrialConfig extends TrialConfig {
  variant: UnusedVariant;
}

export interface UnusedTrialOutput extends TrialOutput {
  wiring: Wiring;
}

// Warren imports the API at boot, by name, only if it resolves: refusing the name is not having it.
const WITHOUT_OPENTELEMETRY = `
export async function resolve(specifier, context, next) {
  if (specifier !== '@opentelemetry/api' && !specifier.startsWith('@opentelemetry/api/')) return next(specifier, context);
  const error = new Error('@opentelemetry/api is hidden from this trial (the plain app of the unused-features scenario)');
  error.code = 'ERR_MODULE_NOT_FOUND';
  throw error;
}`;

/** The matrix's Warren adapter, which notes what its app wired once booted. */
class InspectedWarren extends WarrenAdapter {
  wiring?: Omit<Wiring, 'openTelemetryImportable'>;

  override async setup(spec: BrokerSpec): Promise<void> {
    await super.setup(spec);
    const { connections } = describeTopology(this.application!);
    this.wiring = {
      handlers: Object.fromEntries(connections.map((c) => [c.connection, c.handlers.length])),
      withSchema: connections.reduce((n, c) => n + c.handlers.filter((h) => h.schema).length, 0),
    };
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '') as UnusedTrialConfig;
  const featured = config.variant === 'featured';
  if (!featured) register(`data:text/javascript,${encodeURIComponent(WITHOUT_OPENTELEMETRY)}`);
  const openTelemetryImportable = await import('@opentelemetry/api').then(
    () => true,
    () => false,
  );
  const adapter = new InspectedWarren('direct-reply-to', false, false, featured ? featuredExtras : undefined);
  const output = await measure(adapter, config);
  reportResult({ ...output, wiring: { ...adapter.wiring!, openTelemetryImportable } } satisfies UnusedTrialOutput);
}

main().catch(trialFailed);

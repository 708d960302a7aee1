// One trial in a fresh process: load one system's adapter, set it up, run one scenario, tear it
// down, and print the result as one `@@RESULT {json}` line. A process per trial keeps the systems
// apart (the golevelup adapter loads NestJS 11, the others NestJS 12) and gives each the same
// cold start, heap and JIT state.
import type { Adapter } from './harness.js';
import { measure } from './measure.js';
import { reportResult, trialFailed } from './trial.js';
import type { SystemName, TrialConfig } from './systems.js';

async function load(system: SystemName): Promise<Adapter> {
  switch (system) {
    case 'raw':
      return new (await import('./adapters/raw.js')).RawAdapter(2);
    case 'raw-1conn':
      return new (await import('./adapters/raw.js')).RawAdapter(1);
    case 'warren':
      return new (await import('./adapters/warren.js')).WarrenAdapter('direct-reply-to');
    case 'warren-exclusive':
      return new (await import('./adapters/warren.js')).WarrenAdapter('exclusive');
    case 'warren-otel':
      return new (await import('./adapters/warren.js')).WarrenAdapter('direct-reply-to', true);
    case 'warren-batch':
      return new (await import('./adapters/warren.js')).WarrenAdapter('direct-reply-to', false, true);
    case 'nest-rmq':
      return new (await import('./adapters/nest-rmq.js')).NestRmqAdapter();
    case 'golevelup': {
      // Plain ESM next to its own node_modules (NestJS 11); it imports this build's harness.
      const url = new URL('../../golevelup/adapter.mjs', import.meta.url);
      const module = (await import(url.href)) as { create(): Adapter };
      return module.create();
    }
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '') as TrialConfig;
  reportResult(await measure(await load(config.system), config));
}

main().catch(trialFailed);

// One trial in a fresh process: load one system's adapter, set it up, run one scenario, tear it
// down, and print the result as one `@@RESULT {json}` line. A process per trial keeps the systems
// apart (the golevelup adapter loads NestJS 11, the others NestJS 12) and gives each the same
// cold start, heap and JIT state.
import { performance } from 'node:perf_hooks';
import { collectGarbage, type Adapter, type BootResult, type PubsubResult, type RpcResult } from './harness.js';
import type { SystemName, TrialConfig, TrialOutput } from './systems.js';

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
  const adapter = await load(config.system);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await adapter.setup(config.spec);
  const setupMs = performance.now() - t0;
  const setupCpu = process.cpuUsage(cpu0);
  let result: PubsubResult | RpcResult | BootResult;
  switch (config.spec.scenario) {
    case 'pubsub':
    case 'store':
      result = await adapter.pubsub(config.n);
      break;
    case 'rpc-seq':
      result = await adapter.rpcSequential(config.n);
      break;
    case 'rpc-conc':
      result = await adapter.rpcConcurrent(config.n, config.inFlight);
      break;
    case 'boot': {
      const first = await adapter.firstDeliveries();
      // Without a baseline: everything the process has used since it started.
      const ready = process.cpuUsage();
      collectGarbage();
      const memory = process.memoryUsage();
      result = {
        kind: 'boot',
        handlers: config.spec.handlers,
        setupMs,
        firstDeliveryMs: first.ms,
        sinceProcessStartMs: t0 + setupMs + first.ms,
        rssMb: memory.rss / 2 ** 20,
        heapUsedMb: memory.heapUsed / 2 ** 20,
        cpuSetupMs: (setupCpu.user + setupCpu.system) / 1000,
        cpuToReadyMs: (ready.user + ready.system) / 1000,
        lost: first.lost,
        duplicated: first.duplicated,
        misrouted: first.misrouted,
      };
      break;
    }
  }
  const rssMb = process.memoryUsage().rss / 2 ** 20;
  const t1 = performance.now();
  await adapter.teardown();
  const output: TrialOutput = {
    system: config.system,
    scenario: config.spec.scenario,
    result,
    setupMs,
    teardownMs: performance.now() - t1,
    rssMb,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(`@@RESULT ${JSON.stringify(output)}\n`, () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});

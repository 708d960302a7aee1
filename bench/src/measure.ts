// The body of one trial, whatever process runs it (the matrix's worker.ts, the unused-features
// scenario's trial): set the adapter up, run the spec's scenario, tear it down, and say what it
// measured. Run once per process: a process per trial gives each the same cold start, heap and JIT.
import { performance } from 'node:perf_hooks';
import { collectGarbage, type Adapter, type BootResult, type PubsubResult, type RpcResult } from './harness.js';
import type { TrialConfig, TrialOutput } from './systems.js';

export async function measure(adapter: Adapter, config: TrialConfig): Promise<TrialOutput> {
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
  return {
    system: config.system,
    scenario: config.spec.scenario,
    result,
    setupMs,
    teardownMs: performance.now() - t1,
    rssMb,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
  };
}

// Bytes allocated per message or call, and by which functions: V8's sampling heap profiler with
// collected objects included (what the garbage collector has to clear, which --heap-prof leaves
// out), over one scenario of the raw or Warren adapter in this process, after a warm-up.
// Run after `npm run bench` has built the bench (bench/dist), against RABBITMQ_URL:
//
//   node bench/allocations.mjs <raw|warren> <pubsub|rpc-seq|rpc-conc> [n, default 20000]
//
// TOP=N lists the N functions that allocate most (default 30). The trial's queues and exchange are
// deleted afterwards, by the bench driver's clean-up.
import { Session } from 'node:inspector/promises';
const [system, scenario, nArg] = process.argv.slice(2);
const n = Number(nArg ?? 20000);
if (!['raw', 'warren'].includes(system) || !['pubsub', 'rpc-seq', 'rpc-conc'].includes(scenario) || !(n > 0)) {
  console.error('usage: node bench/allocations.mjs <raw|warren> <pubsub|rpc-seq|rpc-conc> [n, default 20000]');
  process.exit(2);
}
const { RawAdapter } = await import('./dist/src/adapters/raw.js');
const { WarrenAdapter } = await import('./dist/src/adapters/warren.js');
const { BrokerAdmin, trialSpec } = await import('./dist/src/broker.js');
const url = process.env.RABBITMQ_URL || 'amqp://localhost';
// The bench's names and clean-up (broker.ts), with the matrix's prefetch and publish window.
const spec = trialSpec(url, `alloc${Date.now().toString(36)}`, scenario, {
  prefetch: 100,
  publishWindow: 1000,
  warmup: 2000,
  timeoutMs: 120000,
});
const adapter = system === 'raw' ? new RawAdapter(2) : new WarrenAdapter('direct-reply-to');
await adapter.setup(spec);
const run = () =>
  scenario === 'pubsub'
    ? adapter.pubsub(n)
    : scenario === 'rpc-seq'
      ? adapter.rpcSequential(n)
      : adapter.rpcConcurrent(n, 100);
await (scenario === 'pubsub' ? adapter.pubsub(2000) : adapter.rpcConcurrent(3000, 100));
const session = new Session();
session.connect();
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 4096,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
const r = await run();
const { profile } = await session.post('HeapProfiler.stopSampling');
console.log(JSON.stringify({ ...r, latency: undefined }).slice(0, 300));
// sum self sizes per function
const byFn = new Map();
let total = 0;
const walk = (node, stack) => {
  const f = node.callFrame;
  const name = `${f.functionName || '(anon)'} ${f.url
    .replace(/.*node_modules\//, '')
    .replace(/.*\/libs\/warren\/dist\/esm\//, 'warren/')
    .replace(/.*bench\/dist\//, 'bench/')}:${f.lineNumber}`;
  const self = node.selfSize;
  total += self;
  byFn.set(name, (byFn.get(name) ?? 0) + self);
  for (const c of node.children) walk(c, stack);
};
walk(profile.head, []);
console.log(
  `allocated ≈ ${(total / n).toFixed(0)} bytes per ${scenario === 'pubsub' ? 'message' : 'call'} (sampled, ${n})`,
);
for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 30)))
  console.log(`${(v / n).toFixed(0).padStart(7)} B  ${k}`);
await adapter.teardown();
const admin = await BrokerAdmin.connect(url, process.env.RABBITMQ_MANAGEMENT_URL || undefined);
await admin.cleanup(spec);
await admin.close();
process.exit(0);

// Where the heap gap between Warren and raw amqplib during the RPC run comes from (issue 18): the
// V8 heap in use after two forced GCs, each case in a fresh process, so that what one case loads
// is not counted in another's.
//
//   node --expose-gc bench/heap-gap.mjs            (after `npm run bench` has built bench/dist)
//
// Cases: node alone; amqplib loaded; the raw adapter set up (its connections, channels, consumer);
// an empty NestJS application context, without and with nestjs-warren's code loaded; one with WarrenModule and no handlers; the bench's Warren
// adapter set up (its @Subscribe and @RpcHandler, publisher, RPC client); and, for raw and
// Warren, right after 10 000 RPC calls with 100 in flight (retained, not garbage). Against
// RABBITMQ_URL. The bench's own figure (`heapMb`) is heapUsed sampled during the calls, garbage
// included.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CASES = [
  'node',
  'amqplib',
  'raw',
  'nest-empty',
  'nest-warren-module',
  'warren',
  'raw-after-rpc',
  'warren-after-rpc',
];
const heapMb = () => {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

async function measure(which) {
  const url = process.env.RABBITMQ_URL ?? 'amqp://localhost';
  if (which === 'node') return heapMb();
  if (which === 'amqplib') {
    await import('amqplib');
    return heapMb();
  }
  if (which.startsWith('nest-')) {
    await import('reflect-metadata');
    const { Module } = await import('@nestjs/common');
    const { NestFactory } = await import('@nestjs/core');
    const imports = [];
    // Warren's code loaded, its module not imported: what loading the package costs.
    if (which === 'nest-empty-warren-loaded') await import('nestjs-warren');
    if (which === 'nest-warren-module') {
      const { WarrenModule } = await import('nestjs-warren');
      imports.push(WarrenModule.forRoot({ url }));
    }
    class Empty {}
    Module({ imports })(Empty);
    const app = await NestFactory.createApplicationContext(Empty, { logger: false });
    await app.init();
    const mb = heapMb();
    await app.close();
    return mb;
  }
  const system = which.split('-')[0];
  // Only the system's own adapter module: Warren's loads NestJS.
  const adapter =
    system === 'raw'
      ? new (await import('./dist/src/adapters/raw.js')).RawAdapter(2)
      : new (await import('./dist/src/adapters/warren.js')).WarrenAdapter('direct-reply-to');
  // The bench's names (broker.ts), with the matrix's prefetch and publish window, deleted afterwards
  // by the driver's clean-up; loaded only here, so the cases above measure only what they name.
  const { BrokerAdmin, trialSpec } = await import('./dist/src/broker.js');
  const spec = trialSpec(url, `heap${Date.now().toString(36)}`, 'rpc-conc', {
    prefetch: 100,
    publishWindow: 1000,
    warmup: 500,
    timeoutMs: 120000,
  });
  await adapter.setup(spec);
  if (which.endsWith('-after-rpc')) {
    await adapter.rpcConcurrent(500, 100);
    await adapter.rpcConcurrent(10000, 100);
  }
  const mb = heapMb();
  await adapter.teardown?.();
  const admin = await BrokerAdmin.connect(url, process.env.RABBITMQ_MANAGEMENT_URL || undefined);
  await admin.cleanup(spec);
  await admin.close();
  return mb;
}

const which = process.argv[2];
if (which) {
  const mb = await measure(which);
  console.log(mb.toFixed(1));
  process.exit(0);
} else {
  const self = fileURLToPath(import.meta.url);
  for (const c of CASES) {
    const out = execFileSync(process.execPath, ['--expose-gc', self, c], { encoding: 'utf8' }).trim().split('\n').pop();
    console.log(`${c.padEnd(20)} ${out.padStart(6)} MB`);
  }
}

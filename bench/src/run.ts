// The benchmark driver (`npm run bench` at the repository root; `npm run bench -- --help`).
//
// Every scenario runs --runs times. In each run every system gets one trial, in an order that
// rotates from run to run (interleaved, so a slow minute on the shared machine hits every
// system alike); each trial is a fresh worker process with its own queue and exchange names,
// which the driver deletes once the worker has exited, so every trial starts from a clean broker.
// The tables give per-system medians, the spread over runs and every figure as a ratio to raw
// amqplib; the JSON file in bench/results/ keeps every trial.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BrokerAdmin, trialSpec, type BrokerInfo } from './broker.js';
import { SCENARIOS, type BrokerSpec, type Scenario } from './harness.js';
import {
  consoleTable,
  markdownTable,
  memoryTable,
  problems,
  summarize,
  table,
  type ScenarioSummary,
  type Trial,
} from './report.js';
import { LABELS, runsScenario, SYSTEMS, type SystemName, type TrialConfig, type TrialOutput } from './systems.js';
import { chartCaption, ratioChart } from './chart.js';
import { killCurrentTrial, runWorker } from './trial.js';
import { wireCheck, wireControl, wireTable } from './wire/check.js';
import { type OutboxBench, runOutboxBench } from './outbox/run.js';
import { onInterrupt, type SideBench } from './side/side.js';
import { OWN_BROKER, runSideScenario, SIDE_SCENARIOS, type SideScenario, type SideSizes } from './side/scenarios.js';

const here = dirname(fileURLToPath(import.meta.url)); // bench/dist/src
const benchDir = join(here, '..', '..');
const repoRoot = join(benchDir, '..');

/** The outbox scenario runs apart from the systems' matrix: it compares two ways of one system. */
const OUTBOX = 'outbox';
/** Every scenario --scenarios knows: the matrix's, the outbox, and those of side/scenarios.ts. */
const ALL_SCENARIOS = [...SCENARIOS, OUTBOX, ...SIDE_SCENARIOS] as const;

const HELP = `Usage: npm run bench -- [options]

  --runs N              runs of every scenario (default 5)
  --pubsub N            pub/sub: persistent ~1 KB messages per trial (default 20000)
  --rpc-seq N           RPC latency: sequential calls per trial (default 2000)
  --rpc-conc N          RPC throughput: calls per trial (default 10000)
  --in-flight N         RPC throughput: calls in flight (default 100)
  --boot-handlers N     boot: subscribe handlers, each on its own queue (default 200)
  --outbox N            outbox: orders per trial (default 3000)
  --outbox-writers N    outbox: transactions at once (default 20)
  --store N             store: messages per trial, each written to a modelled store (default 10000)
  --store-pool N        store: the modelled store's connections (default 4)
  --store-call-ms N     store: the time of one store call, whatever it writes (default 2)
  --prefetch N          consumer prefetch of every system (default 100)
  --publish-window N    pub/sub: unsettled publishes at most (default 1000)
  --warmup-events N     pub/sub: events before measuring (default 1000)
  --warmup-calls N      RPC: calls before measuring (default 500)
  --systems a,b         ${SYSTEMS.join(',')} (default all)
  --scenarios a,b       ${ALL_SCENARIOS.join(',')} (default all)
  --batch               only the batch handler scenario (with other such flags: those scenarios)
  --service-queue       only the service queue scenario
  --cluster             only the quorum-against-classic scenario on a 3-node cluster the bench starts
  --delayed             only the delayed delivery scenario, on a fresh broker the bench starts
  --memory-broker       only the memory://-against-RabbitMQ scenario
  --unused-features     only the plain Warren app against one with features its handlers do not use
                        (the sizes of --pubsub, --rpc-seq, --rpc-conc and --in-flight)
  --batch-messages N    batch: messages per trial (default 10000)
  --service-queue-messages N  service queue: messages per trial (default 10000)
  --cluster-messages N  cluster: messages per trial (default 10000)
  --delayed-messages N  delayed: messages per trial (default 10000)
  --delayed-max-s N     delayed: the longest random delay, in seconds (default 60)
  --delayed-unit-ms N   delayed: how long a second of delay lasts (delayLadder.unitMs; default 1000)
  --delayed-runs N      delayed: runs (default 2: each takes the longest delay at least)
  --memory-broker-rounds N  memory://: RPC calls and events per trial (default 1000)
  --cpu-prof a,b        write V8 CPU profiles of these systems' trials to bench/results/profiles/
  --docs                also rewrite the results section of docs/benchmarks.md
  --out DIR             where the JSON goes (default bench/results)
  --pause-ms N          pause between trials (default 1000)
  --trial-timeout-s N   kill a trial after N seconds (default 300)
  --wire-check          instead of the bench: run each system's pub/sub and RPC through a proxy that
                        counts confirm.select and the broker's basic.ack frames per connection, and
                        tell whether its publish waits for the broker's confirm
  --wire-messages N     wire check: messages and calls per trial (default 50)
  --wire-delay-ms N     wire check: the proxy holds back the broker's bytes this long in the pub/sub
                        trial, which publishes one message at a time (default 100)

Broker: RABBITMQ_URL (default amqp://localhost); RABBITMQ_MANAGEMENT_URL, when set, is used to
check that each trial's connections are gone and nothing with its names is left behind.
Database (the outbox scenario): DATABASE_URL, or else a private PostgreSQL started for the run
(Debian's postgresql package, as the tests use).`;

interface Options {
  runs: number;
  sizes: Record<Scenario, number>;
  inFlight: number;
  storePool: number;
  storeCallMs: number;
  prefetch: number;
  publishWindow: number;
  warmupEvents: number;
  warmupCalls: number;
  systems: SystemName[];
  scenarios: Scenario[];
  outbox: boolean;
  outboxOrders: number;
  outboxWriters: number;
  side: SideScenario[];
  sideSizes: SideSizes;
  cpuProf: SystemName[];
  docs: boolean;
  out: string;
  pauseMs: number;
  trialTimeoutS: number;
  wireCheck: boolean;
  wireMessages: number;
  wireDelayMs: number;
}

function parseOptions(): Options {
  const { values } = parseArgsOrFail({
    options: {
      runs: { type: 'string', default: '5' },
      pubsub: { type: 'string', default: '20000' },
      'rpc-seq': { type: 'string', default: '2000' },
      'rpc-conc': { type: 'string', default: '10000' },
      'boot-handlers': { type: 'string', default: '200' },
      outbox: { type: 'string', default: '3000' },
      'outbox-writers': { type: 'string', default: '20' },
      store: { type: 'string', default: '10000' },
      'store-pool': { type: 'string', default: '4' },
      'store-call-ms': { type: 'string', default: '2' },
      'in-flight': { type: 'string', default: '100' },
      prefetch: { type: 'string', default: '100' },
      'publish-window': { type: 'string', default: '1000' },
      'warmup-events': { type: 'string', default: '1000' },
      'warmup-calls': { type: 'string', default: '500' },
      systems: { type: 'string', default: SYSTEMS.join(',') },
      scenarios: { type: 'string' },
      batch: { type: 'boolean', default: false },
      'service-queue': { type: 'boolean', default: false },
      cluster: { type: 'boolean', default: false },
      delayed: { type: 'boolean', default: false },
      'memory-broker': { type: 'boolean', default: false },
      'unused-features': { type: 'boolean', default: false },
      'batch-messages': { type: 'string', default: '10000' },
      'service-queue-messages': { type: 'string', default: '10000' },
      'cluster-messages': { type: 'string', default: '10000' },
      'delayed-messages': { type: 'string', default: '10000' },
      'delayed-max-s': { type: 'string', default: '60' },
      'delayed-unit-ms': { type: 'string', default: '1000' },
      'delayed-runs': { type: 'string', default: '2' },
      'memory-broker-rounds': { type: 'string', default: '1000' },
      'cpu-prof': { type: 'string', default: '' },
      docs: { type: 'boolean', default: false },
      out: { type: 'string', default: join(benchDir, 'results') },
      'pause-ms': { type: 'string', default: '1000' },
      'trial-timeout-s': { type: 'string', default: '300' },
      'wire-check': { type: 'boolean', default: false },
      'wire-messages': { type: 'string', default: '50' },
      'wire-delay-ms': { type: 'string', default: '100' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const int = (name: string, min = 1): number => {
    const raw = values[name as keyof typeof values] as string;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) fail(`--${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
    return v;
  };
  const list = <T extends string>(name: string, allowed: readonly T[]): T[] => {
    const raw = (values[name as keyof typeof values] as string)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const v of raw)
      if (!allowed.includes(v as T)) fail(`--${name}: unknown "${v}" (known: ${allowed.join(', ')})`);
    return allowed.filter((a) => raw.includes(a));
  };
  // A scenario's own flag runs it (with the other flagged ones) instead of the default set.
  const flagged = SIDE_SCENARIOS.filter((s) => values[s as keyof typeof values] === true);
  if (values.scenarios === undefined) values.scenarios = flagged.length ? '' : ALL_SCENARIOS.join(',');
  const chosen = [...list('scenarios', ALL_SCENARIOS), ...flagged];
  return {
    runs: int('runs'),
    sizes: {
      pubsub: int('pubsub'),
      'rpc-seq': int('rpc-seq'),
      'rpc-conc': int('rpc-conc'),
      boot: int('boot-handlers'),
      store: int('store'),
    },
    storePool: int('store-pool'),
    storeCallMs: int('store-call-ms', 0),
    inFlight: int('in-flight'),
    prefetch: int('prefetch'),
    publishWindow: int('publish-window'),
    warmupEvents: int('warmup-events', 0),
    warmupCalls: int('warmup-calls', 0),
    systems: list('systems', SYSTEMS),
    scenarios: SCENARIOS.filter((s) => chosen.includes(s)),
    outbox: chosen.includes(OUTBOX),
    side: SIDE_SCENARIOS.filter((s) => chosen.includes(s)),
    sideSizes: {
      batch: int('batch-messages'),
      serviceQueue: int('service-queue-messages'),
      cluster: int('cluster-messages'),
      delayed: {
        runs: int('delayed-runs'),
        n: int('delayed-messages'),
        maxDelayS: int('delayed-max-s'),
        unitMs: int('delayed-unit-ms'),
      },
      memoryBrokerRounds: int('memory-broker-rounds'),
      unusedFeatures: {
        pubsub: int('pubsub'),
        rpcSeq: int('rpc-seq'),
        rpcConc: int('rpc-conc'),
        inFlight: int('in-flight'),
      },
    },
    outboxOrders: int('outbox'),
    outboxWriters: int('outbox-writers'),
    cpuProf: list('cpu-prof', SYSTEMS),
    docs: values.docs as boolean,
    out: values.out as string,
    pauseMs: int('pause-ms', 0),
    trialTimeoutS: int('trial-timeout-s'),
    wireCheck: values['wire-check'] as boolean,
    wireMessages: int('wire-messages'),
    wireDelayMs: int('wire-delay-ms'),
  };
}

function parseArgsOrFail<T extends Parameters<typeof parseArgs>[0]>(config: T) {
  try {
    return parseArgs(config);
  } catch (err) {
    fail(`${(err as Error).message} (see --help)`);
  }
}

function fail(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}

// ---- versions and preflight ------------------------------------------------------------------

/** The folder a package resolves to from `fromDir` (node_modules lookup, as Node does). */
function packageDir(fromDir: string, pkg: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', pkg);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dirname(dir) === dir) return undefined;
  }
}

function versionOf(fromDir: string, pkg: string): string {
  const dir = packageDir(fromDir, pkg);
  return dir ? (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version : 'missing';
}

function preflight(options: Options): void {
  const warrenDir = packageDir(here, 'nestjs-warren');
  if (!warrenDir || !existsSync(join(warrenDir, 'dist', 'esm', 'index.js'))) {
    fail('nestjs-warren is not built: run `npm run build:lib` (the root `npm run bench` does)');
  }
  // Warren and the bench's Nest app must share one @nestjs/common and @nestjs/core, or DI breaks.
  for (const pkg of ['@nestjs/common', '@nestjs/core']) {
    const ours = packageDir(here, pkg);
    const warrens = packageDir(join(warrenDir, 'dist', 'esm'), pkg);
    if (ours !== warrens)
      fail(`the bench resolves ${pkg} to ${ours} but nestjs-warren to ${warrens}: they must be one copy`);
  }
  if (options.systems.includes('golevelup')) {
    if (
      !packageDir(join(benchDir, 'golevelup'), '@golevelup/nestjs-rabbitmq')?.includes('/bench/golevelup/node_modules/')
    ) {
      fail(
        'the golevelup adapter has no dependencies: run `npm --prefix bench/golevelup install` (the root `npm run bench` does)',
      );
    }
  }
}

function collectVersions() {
  const golevelupDir = join(benchDir, 'golevelup');
  return {
    'nestjs-warren': versionOf(here, 'nestjs-warren'),
    node: process.versions.node,
    typescript: versionOf(repoRoot, 'typescript'),
    'warren, raw, nest-rmq': {
      '@nestjs/core': versionOf(here, '@nestjs/core'),
      '@nestjs/microservices': versionOf(here, '@nestjs/microservices'),
      amqplib: versionOf(here, 'amqplib'),
      'amqp-connection-manager': versionOf(here, 'amqp-connection-manager'),
    },
    golevelup: {
      '@golevelup/nestjs-rabbitmq': versionOf(golevelupDir, '@golevelup/nestjs-rabbitmq'),
      '@nestjs/core': versionOf(golevelupDir, '@nestjs/core'),
      amqplib: versionOf(join(golevelupDir, 'node_modules', '@golevelup', 'nestjs-rabbitmq'), 'amqplib'),
      'amqp-connection-manager': versionOf(
        join(golevelupDir, 'node_modules', '@golevelup', 'nestjs-rabbitmq'),
        'amqp-connection-manager',
      ),
    },
  };
}

function machine() {
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

function gitCommit(): string | undefined {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const sha = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'libs');
    return dirty ? `${sha} (libs/ modified)` : sha;
  } catch {
    return undefined;
  }
}

// ---- trials ----------------------------------------------------------------------------------

function describe(output: TrialOutput): string {
  const r = output.result;
  if (r.kind === 'boot') {
    return (
      `setup ${fmt(r.setupMs)} ms, first deliveries ${fmt(r.firstDeliveryMs)} ms, ready ${fmt(r.sinceProcessStartMs)} ms ` +
      `after process start, CPU ${fmt(r.cpuSetupMs)} ms in setup, RSS ${fmt(r.rssMb)} MB${r.lost || r.duplicated || r.misrouted ? `, ${r.lost} lost, ${r.duplicated} dup, ${r.misrouted} misrouted` : ''}`
    );
  }
  if (r.kind === 'pubsub') {
    return `${fmt(r.msgsPerSec)} msgs/s, lost ${r.lost}, dup ${r.duplicated}, e2e p50 ${r.e2eP50Ms.toFixed(0)} ms, CPU ${r.cpuUsPerMsg.toFixed(1)} µs/msg`;
  }
  return `${fmt(r.callsPerSec)} calls/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, CPU ${r.cpuUsPerCall.toFixed(1)} µs/call${r.failed || r.wrongReplies ? `, ${r.failed} failed, ${r.wrongReplies} wrong` : ''}`;
}

function fmt(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

const MEMORY_TITLE =
  "5. Memory — peak resident set of the worker process during the trials above, the V8 heap in use during the RPC throughput calls (median of samples every 50 ms; − raw: MB over raw amqplib's); resident set and V8 heap once booted with the boot scenario's handlers";

const TITLES: Record<Scenario, (o: Options) => string> = {
  pubsub: (o) =>
    `1. Pub/sub — ${fmt(o.sizes.pubsub)} persistent ~1 KB JSON messages through a topic exchange to a durable queue, acked after the handler (end-to-end)`,
  'rpc-seq': (o) => `2. RPC latency — ${fmt(o.sizes['rpc-seq'])} sequential calls`,
  'rpc-conc': (o) => `3. RPC throughput — ${fmt(o.sizes['rpc-conc'])} calls, ${o.inFlight} in flight`,
  store: (o) =>
    `6. Store — ${fmt(o.sizes.store)} persistent ~1 KB messages, each written to a modelled store (${o.storePool} connections, ${o.storeCallMs} ms a call): one call per message, or one per batch of 100`,
  boot: (o) =>
    `4. Boot — an app with ${fmt(o.sizes.boot)} subscribe handlers, each on its own durable queue, until every handler has had a message`,
};

async function main(): Promise<void> {
  const options = parseOptions();
  preflight(options);
  const url = process.env.RABBITMQ_URL || 'amqp://localhost';
  const managementUrl = process.env.RABBITMQ_MANAGEMENT_URL || undefined;
  // The cluster and delayed scenarios start brokers of their own: run alone, they need no other.
  const needsBroker =
    options.wireCheck ||
    options.scenarios.length > 0 ||
    options.outbox ||
    options.side.some((s) => !OWN_BROKER.includes(s));
  const admin = needsBroker
    ? await BrokerAdmin.connect(url, managementUrl).catch((err: Error) =>
        fail(`cannot connect to RabbitMQ (RABBITMQ_URL): ${err.message.replace(/\/\/[^@/]*@/, '//***@')}`),
      )
    : undefined;
  const broker: BrokerInfo = admin
    ? await admin.info()
    : { product: 'none', version: 'none (every scenario run started its own)', managementApi: false };
  const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
  const startedAt = new Date();
  const versions = collectVersions();
  if (options.wireCheck) return runWireCheck(options, url, admin!, broker, runId, startedAt, versions);
  console.log(
    `bench ${runId}: ${options.runs} run(s) × [${[...options.scenarios, ...(options.outbox ? [OUTBOX] : []), ...options.side].join(', ')}]${options.scenarios.length ? ` × [${options.systems.join(', ')}]` : ''}; ` +
      `RabbitMQ ${broker.version}, Node ${process.version}, ${os.availableParallelism()} CPU(s)` +
      (broker.managementApi || !admin ? '' : '; no RABBITMQ_MANAGEMENT_URL: clean-up checks are limited'),
  );

  let activeSpec: BrokerSpec | undefined;
  process.on('SIGINT', () => {
    console.error('\nbench: interrupted; cleaning up');
    killCurrentTrial();
    const done = () => process.exit(130);
    // The brokers the cluster and delayed scenarios started are stopped too.
    const stops = [...onInterrupt].map((stop) => stop().catch(() => undefined));
    if (activeSpec && admin) stops.push(admin.cleanup(activeSpec).then(() => undefined));
    void Promise.all(stops).finally(done);
  });

  const trials: Trial[] = [];
  for (let run = 1; run <= options.runs; run++) {
    for (const scenario of options.scenarios) {
      const systems = options.systems.filter((s) => runsScenario(s, scenario));
      const shift = (run - 1) % systems.length;
      const order = [...systems.slice(shift), ...systems.slice(0, shift)];
      for (const [position, system] of order.entries()) {
        const tag = `${runId}.r${run}.${scenario}.${system}`;
        const spec: BrokerSpec = trialSpec(url, tag, scenario, {
          prefetch: options.prefetch,
          publishWindow: options.publishWindow,
          warmup: scenario === 'pubsub' || scenario === 'store' ? options.warmupEvents : options.warmupCalls,
          timeoutMs: Math.max(60_000, options.sizes.pubsub * 5),
          handlers: scenario === 'boot' ? options.sizes.boot : 0,
          storePool: options.storePool,
          storeCallMs: options.storeCallMs,
        });
        const config: TrialConfig = { system, spec, n: options.sizes[scenario], inFlight: options.inFlight };
        const trial: Trial = { run, scenario, system, position, wallMs: 0, load1: os.loadavg()[0] };
        activeSpec = spec;
        const t0 = Date.now();
        try {
          trial.output = await runWorker(config, options.cpuProf.includes(system), options.trialTimeoutS);
        } catch (err) {
          trial.error = (err as Error).message;
        }
        trial.wallMs = Date.now() - t0;
        trial.cleanup = await admin!.cleanup(spec);
        activeSpec = undefined;
        trials.push(trial);
        const status = trial.output ? describe(trial.output) : `FAILED: ${trial.error}`;
        const extra = [
          trial.cleanup.leftInQueue ? `${trial.cleanup.leftInQueue} left in queue` : '',
          trial.cleanup.residue.length ? `residue: ${trial.cleanup.residue.join(', ')}` : '',
          trial.cleanup.lingeringConnections ? `${trial.cleanup.lingeringConnections} connection(s) still open` : '',
        ].filter(Boolean);
        console.log(
          `run ${run}/${options.runs}  ${scenario.padEnd(8)}  ${system.padEnd(16)}  ${status}  [${(trial.wallMs / 1000).toFixed(1)} s]${extra.length ? `  ⚠ ${extra.join('; ')}` : ''}`,
        );
        if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
      }
    }
  }
  const outbox: OutboxBench | undefined = options.outbox
    ? await runOutboxBench(
        {
          runs: options.runs,
          n: options.outboxOrders,
          warmup: Math.min(options.warmupEvents, options.outboxOrders),
          inFlight: options.outboxWriters,
          prefetch: options.prefetch,
          pauseMs: options.pauseMs,
          trialTimeoutS: options.trialTimeoutS,
        },
        url,
        admin!,
        runId,
      )
    : undefined;
  const side: SideBench[] = [];
  for (const scenario of options.side) {
    const ctx = {
      runs: options.runs,
      url,
      managementUrl,
      runId,
      prefetch: options.prefetch,
      publishWindow: options.publishWindow,
      warmupEvents: options.warmupEvents,
      warmupCalls: options.warmupCalls,
      pauseMs: options.pauseMs,
      trialTimeoutS: options.trialTimeoutS,
    };
    try {
      side.push(await runSideScenario(scenario, ctx, admin, options.sideSizes));
    } catch (err) {
      // A scenario that cannot run at all (its cluster did not form) fails the run, and the others still run.
      const message = (err as Error).message;
      console.error(`bench: the ${scenario} scenario failed: ${message}`);
      side.push({
        name: scenario,
        title: scenario,
        table: { headers: [], align: '', rows: [] },
        notes: [],
        problems: [`${scenario}: ${message}`],
        trials: [],
      });
    }
  }
  await admin?.close();

  const summaries: ScenarioSummary[] = options.scenarios.map((sc) =>
    summarize(trials, sc, options.systems, TITLES[sc](options)),
  );
  const issues = [...problems(summaries), ...(outbox?.problems ?? []), ...side.flatMap((b) => b.problems)];
  const finishedAt = new Date();
  console.log('');
  for (const s of summaries) {
    console.log(`${s.title}\n\n${consoleTable(table(s))}\n`);
  }
  const memory = memoryTable(summaries);
  if (memory) console.log(`${MEMORY_TITLE}\n\n${consoleTable(memory)}\n`);
  if (outbox) console.log(`${outbox.title}\n\n${consoleTable(outbox.table)}\n\nDatabase: ${outbox.database}.\n`);
  for (const b of side.filter((x) => x.table.rows.length))
    console.log(`${b.title}\n\n${consoleTable(b.table)}\n\n${b.notes.join('\n')}\n`);
  if (summaries.length > 0)
    console.log(
      '× raw = this median ÷ the median of raw amqplib on two connections (throughput: higher is better; latency and CPU: lower is better). ' +
        'CPU = user + system time of the trial process over the measured phase, per message or call. ' +
        'spread = (max − min) ÷ median over the runs.',
    );
  const load = loadSummary([
    ...trials,
    ...(outbox?.trials ?? []),
    ...side.flatMap((b) =>
      b.trials.filter((t): t is { load1: number } => typeof (t as { load1?: unknown }).load1 === 'number'),
    ),
  ]);
  console.log(
    `1-minute load average before each trial: median ${load.median.toFixed(1)}, ${load.min.toFixed(1)}–${load.max.toFixed(1)} ` +
      `on ${os.availableParallelism()} CPUs${load.median > os.availableParallelism() ? ': other work was running, expect noise' : ''}.`,
  );
  console.log(
    issues.length
      ? `\nPROBLEMS:\n  ${issues.join('\n  ')}`
      : '\nEvery message arrived exactly once; every call got its own reply.',
  );

  const meta = {
    runId,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
    commit: gitCommit(),
    load,
    options: { ...options, out: undefined, docs: undefined },
    machine: machine(),
    broker,
    versions,
    labels: LABELS,
  };
  mkdirSync(options.out, { recursive: true });
  const file = join(options.out, `bench-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ meta, summaries, outbox, side, problems: issues, trials }, null, 2) + '\n');
  // The chart is of the systems' matrix; a run of the outbox scenario alone has none.
  const chart = summaries.length > 0 ? ratioChart(summaries, chartCaption(meta)) : undefined;
  if (chart) writeFileSync(file.replace(/\.json$/, '.svg'), chart);
  console.log(
    `\nresults: ${relative(repoRoot, file)} (${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)} s)`,
  );
  if (options.docs) {
    const docs = join(repoRoot, 'docs', 'benchmarks.md');
    if (chart) {
      writeFileSync(join(repoRoot, 'docs', CHART_FILE), chart);
      await updateDocs(docs, markdownResults(meta, summaries, issues));
    }
    if (outbox) await updateDocs(docs, markdownOutbox(meta, outbox), OUTBOX_START, OUTBOX_END);
    for (const b of side.filter((x) => x.table.rows.length))
      await updateDocs(docs, markdownSide(meta, b), `<!-- bench:${b.name}:start -->`, `<!-- bench:${b.name}:end -->`);
    console.log(`updated ${relative(repoRoot, docs)}`);
  }
  process.exitCode = issues.length ? 1 : 0;
}

async function runWireCheck(
  options: Options,
  url: string,
  admin: BrokerAdmin,
  broker: BrokerInfo,
  runId: string,
  startedAt: Date,
  versions: ReturnType<typeof collectVersions>,
): Promise<void> {
  console.log(
    `wire check ${runId}: [${options.systems.join(', ')}], ${options.wireMessages} messages and calls per trial; ` +
      `pub/sub one publish at a time with the broker's bytes held back ${options.wireDelayMs} ms`,
  );
  const control = await wireControl(url, options.wireMessages, options.wireDelayMs);
  console.log(
    `control, amqplib through the same proxy: ${control.plainMsPerPublish.toFixed(1)} ms per publish on a plain channel, ` +
      `${control.confirmMsPerPublish.toFixed(1)} ms on a confirm channel` +
      (control.broken ? ` — THE CHECK CANNOT BE TRUSTED: ${control.broken}` : ''),
  );
  const trials = await wireCheck(url, admin, runId, {
    systems: options.systems,
    messages: options.wireMessages,
    delayMs: options.wireDelayMs,
    prefetch: options.prefetch,
    trialTimeoutS: options.trialTimeoutS,
  });
  await admin.close();
  console.log(`\n${consoleTable(wireTable(trials))}\n`);
  for (const t of trials.filter((t) => t.msPerPublish !== undefined)) {
    console.log(
      `${LABELS[t.system]}: a publish settled after ${t.msPerPublish!.toFixed(1)} ms with the broker ${options.wireDelayMs} ms away: ` +
        (t.waitsForConfirm ? "it waits for the broker's confirm" : "it does not wait for the broker's confirm"),
    );
  }
  const meta = {
    runId,
    startedAt: startedAt.toISOString(),
    commit: gitCommit(),
    options,
    machine: machine(),
    broker,
    versions,
  };
  mkdirSync(options.out, { recursive: true });
  const file = join(options.out, `wire-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ meta, control, trials }, null, 2) + '\n');
  console.log(`\nresults: ${relative(repoRoot, file)}`);
  process.exitCode = control.broken || trials.some((t) => t.error) ? 1 : 0;
}

function loadSummary(trials: { load1: number }[]) {
  const loads = trials.map((t) => t.load1).sort((a, b) => a - b);
  if (loads.length === 0) loads.push(os.loadavg()[0]);
  const mid = loads.length >> 1;
  const median = loads.length % 2 ? loads[mid] : (loads[mid - 1] + loads[mid]) / 2;
  return { median, min: loads[0], max: loads[loads.length - 1] };
}

// ---- docs/benchmarks.md ----------------------------------------------------------------------

const START = '<!-- bench:results:start -->';
/** The chart of the run in docs/, next to benchmarks.md. */
const CHART_FILE = 'benchmarks-ratios.svg';
const END = '<!-- bench:results:end -->';

function markdownResults(meta: Record<string, any>, summaries: ScenarioSummary[], issues: string[]): string {
  const m = meta.machine;
  const v = meta.versions;
  const o = meta.options as Options;
  const lines = [
    `Run \`${meta.runId}\` of ${meta.startedAt.slice(0, 10)}${meta.commit ? ` at commit \`${meta.commit}\`` : ''}: ` +
      `${o.runs} run${o.runs === 1 ? '' : 's'} of every scenario, systems interleaved, medians over the runs ` +
      `(${Math.round(meta.durationSeconds)} s in all). Prefetch ${o.prefetch} for every system; ` +
      `warm-up ${o.warmupEvents} events / ${o.warmupCalls} calls per trial.`,
    '',
    `- Machine: ${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB} GiB, ${m.os}; the broker runs on the same machine. ` +
      `1-minute load average before each trial: median ${meta.load.median.toFixed(1)}, ` +
      `${meta.load.min.toFixed(1)}–${meta.load.max.toFixed(1)}${meta.load.median > m.nproc ? ' (other work was running: expect noise)' : ''}.`,
    `- RabbitMQ ${meta.broker.version}${meta.broker.erlang ? ` (Erlang ${meta.broker.erlang})` : ''}; Node.js ${m.node}.`,
    `- nestjs-warren ${v['nestjs-warren']}, raw (both) and NestJS RMQ: @nestjs/core ${v['warren, raw, nest-rmq']['@nestjs/core']}, ` +
      `@nestjs/microservices ${v['warren, raw, nest-rmq']['@nestjs/microservices']}, amqplib ${v['warren, raw, nest-rmq'].amqplib}, ` +
      `amqp-connection-manager ${v['warren, raw, nest-rmq']['amqp-connection-manager']}.`,
    `- @golevelup/nestjs-rabbitmq ${v.golevelup['@golevelup/nestjs-rabbitmq']} with @nestjs/core ${v.golevelup['@nestjs/core']}, ` +
      `amqplib ${v.golevelup.amqplib}, amqp-connection-manager ${v.golevelup['amqp-connection-manager']}.`,
    '',
  ];
  lines.push(`![The headline figures as ratios to raw amqplib](${CHART_FILE})`, '');
  for (const s of summaries) lines.push(`#### ${s.title}`, '', markdownTable(table(s)), '');
  const memory = memoryTable(summaries);
  if (memory) lines.push(`#### ${MEMORY_TITLE}`, '', markdownTable(memory), '');
  lines.push(
    '× raw = the median ÷ the median of raw amqplib on two connections: for throughput higher is better, for latency and CPU lower is better. ' +
      'CPU = user + system time of the trial process (client and handlers, not the broker) over the measured phase, per message or call. ' +
      'spread = (max − min) ÷ median over the runs.',
    '',
    issues.length
      ? `**Problems:** ${issues.join('; ')}`
      : 'Every message arrived exactly once (0 lost / 0 duplicated in every run); every call got its own reply.',
  );
  return lines.join('\n');
}

const OUTBOX_START = '<!-- bench:outbox:start -->';
const OUTBOX_END = '<!-- bench:outbox:end -->';

function markdownOutbox(meta: Record<string, any>, outbox: OutboxBench): string {
  const m = meta.machine;
  return [
    `Run \`${meta.runId}\` of ${meta.startedAt.slice(0, 10)}${meta.commit ? ` at commit \`${meta.commit}\`` : ''}, ` +
      `${(meta.options as Options).runs} run(s), medians; ${outbox.database}, RabbitMQ ${meta.broker.version}, ` +
      `${m.nproc} CPUs, 1-minute load average median ${meta.load.median.toFixed(1)}.`,
    '',
    `#### ${outbox.title}`,
    '',
    markdownTable(outbox.table),
    '',
    outbox.problems.length
      ? `**Problems:** ${outbox.problems.join('; ')}`
      : "Every order's handler started exactly once in every run.",
  ].join('\n');
}

function markdownSide(meta: Record<string, any>, b: SideBench): string {
  const m = meta.machine;
  return [
    `Run \`${meta.runId}\` of ${meta.startedAt.slice(0, 10)}${meta.commit ? ` at commit \`${meta.commit}\`` : ''}, ` +
      `${b.runs ?? (meta.options as Options).runs} run(s), medians; ${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB} GiB, Node.js ${m.node}, ` +
      (OWN_BROKER.includes(b.name as SideScenario) ? '' : `RabbitMQ ${meta.broker.version} (the bench's broker), `) +
      `nestjs-warren ${meta.versions['nestjs-warren']}; 1-minute load average median ${meta.load.median.toFixed(1)}.`,
    '',
    `#### ${b.title}`,
    '',
    markdownTable(b.table),
    '',
    ...b.notes,
    '',
    b.problems.length
      ? `**Problems:** ${b.problems.join('; ')}`
      : (b.allGood ?? 'Every message arrived exactly once in every run.'),
  ].join('\n');
}

async function updateDocs(path: string, block: string, start = START, end = END): Promise<void> {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : `# Benchmarks\n\n${start}\n${end}\n`;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a === -1 || b === -1 || b < a) fail(`${path} has no ${start} … ${end} section to update`);
  let updated = `${text.slice(0, a + start.length)}\n${block}\n${text.slice(b)}`;
  // Formatted as the repository's Prettier would (so `npm run lint` stays green), when it is installed.
  try {
    const prettier = await import('prettier');
    const config = (await prettier.resolveConfig(path)) ?? {};
    updated = await prettier.format(updated, { ...config, filepath: path });
  } catch {
    // No Prettier: the unformatted table is still valid Markdown.
  }
  writeFileSync(path, updated);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

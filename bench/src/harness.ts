// The measuring half of every adapter: the scenarios are written once, here, on top of three
// primitives each system provides (publish an event, make an RPC call, and hand every delivered
// event to `deliver`). This file imports nothing but Node built-ins, so the golevelup adapter,
// which lives in its own package with its own NestJS 11, compiles and loads it too.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

export type Scenario = 'pubsub' | 'rpc-seq' | 'rpc-conc' | 'boot' | 'store';
export const SCENARIOS: readonly Scenario[] = ['pubsub', 'rpc-seq', 'rpc-conc', 'boot', 'store'];

/** What one trial may use on the broker: every name is unique to the trial and deleted after it. */
export interface BrokerSpec {
  url: string;
  /** Unique per trial; part of every name and of the connection names. */
  tag: string;
  scenario: Scenario;
  /** Topic exchange of the pub/sub and boot scenarios (golevelup also routes its RPC through it, as a direct exchange). */
  exchange: string;
  /** Durable queue of the pub/sub scenario, bound to `exchange` with `routingKey`. */
  queue: string;
  routingKey: string;
  /** Queue the RPC server consumes. */
  rpcQueue: string;
  /** Unacked deliveries per consumer, the same for every system. */
  prefetch: number;
  /** Publishes (pub/sub) whose promise has not settled yet, at most. */
  publishWindow: number;
  /** Events or calls made before measuring, not counted. */
  warmup: number;
  /** How long a pub/sub run may wait for its last message. */
  timeoutMs: number;
  /**
   * Boot scenario: this many subscribe handlers, handler i on its own durable queue `handlerQueue(spec, i)`
   * bound with `handlerKey(i)` (NestJS RMQ: one queue with a binding per handler, its own model).
   */
  handlers: number;
  /** Store scenario: the modelled store's connections and the time of one call (a round trip and a commit). */
  storePool: number;
  storeCallMs: number;
}

/**
 * The store of the store scenario, modelled rather than real (the bench has a broker, not a
 * database): a pool of `pool` connections, each call holding one for `callMs` whatever it writes,
 * as a commit costs a round trip and a flush whether it writes one row or a hundred. A call waits
 * for a free connection, as with a database client's pool.
 */
export class ModelledStore {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  calls = 0;
  rows = 0;

  constructor(
    pool: number,
    private readonly callMs: number,
  ) {
    this.free = pool;
  }

  async write(rows: number): Promise<void> {
    if (this.free === 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.free--;
    try {
      await sleep(this.callMs);
      this.calls++;
      this.rows += rows;
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

export function handlerKey(i: number): string {
  return `bench.key.${i}`;
}

export function handlerQueue(spec: Pick<BrokerSpec, 'queue'>, i: number): string {
  return `${spec.queue}${i}`;
}

export interface BenchEvent {
  /** 'w' for warm-up events, 'm' for measured ones. */
  phase: 'w' | 'm';
  id: number;
  /** performance.now() at publish time (publisher and subscriber share the process). */
  sentAt: number;
  body: string;
}

export interface RpcRequest {
  id: number;
  body: string;
}

export interface RpcReply {
  id: number;
  ok: true;
}

export interface PubsubResult {
  kind: 'pubsub';
  n: number;
  /** First publish to last first-delivery. */
  seconds: number;
  msgsPerSec: number;
  /** First publish to the last publish promise settling (a broker confirm where the system waits for one). */
  publishSeconds: number;
  lost: number;
  duplicated: number;
  /** Deliveries whose id was not one we published (never expected). */
  unexpected: number;
  e2eP50Ms: number;
  e2eP99Ms: number;
  messageBytes: number;
  /** CPU time (user + system) of the whole trial process over the measured phase, ÷ n. */
  cpuUsPerMsg: number;
  cpuUserMs: number;
  cpuSystemMs: number;
}

export interface RpcResult {
  kind: 'rpc';
  n: number;
  inFlight: number;
  seconds: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  /** Replies that did not belong to their call. */
  wrongReplies: number;
  failed: number;
  firstError?: string;
  /**
   * V8 heap in use during the measured calls (`process.memoryUsage().heapUsed`, sampled every
   * 50 ms, garbage not yet collected included, as a process's heap is seen from outside): the
   * median and the largest sample.
   */
  heapMb: number;
  heapPeakMb: number;
  /** CPU time (user + system) of the whole trial process (client and server) over the measured calls, ÷ n. */
  cpuUsPerCall: number;
  cpuUserMs: number;
  cpuSystemMs: number;
}

export interface BootResult {
  kind: 'boot';
  handlers: number;
  /** setup(): app creation (or connect and declare, for raw) until every consumer is started. */
  setupMs: number;
  /** After setup: one message published to each handler's routing key until every handler has had its own. */
  firstDeliveryMs: number;
  /** Process start (node's own boot and module loading included) until every handler has had its message. */
  sinceProcessStartMs: number;
  /** Memory once booted and idle (after a GC): resident set and V8 heap in use. */
  rssMb: number;
  heapUsedMb: number;
  /** CPU time (user + system) of setup(), and of the process from its start until every handler has had its message. */
  cpuSetupMs: number;
  cpuToReadyMs: number;
  /** Handlers that never got their message, got it twice, or got another handler's. */
  lost: number;
  duplicated: number;
  misrouted: number;
}

/** The interface every system implements. */
export interface Adapter {
  readonly name: string;
  setup(broker: BrokerSpec): Promise<void>;
  pubsub(n: number): Promise<PubsubResult>;
  rpcSequential(n: number): Promise<RpcResult>;
  rpcConcurrent(n: number, inFlight: number): Promise<RpcResult>;
  /** Boot scenario, after setup(): one message to each of the `spec.handlers` handlers. */
  firstDeliveries(): Promise<{ ms: number; lost: number; duplicated: number; misrouted: number }>;
  teardown(): Promise<void>;
}

/** ~1 KB of JSON per event: the body is padded so that `JSON.stringify(event)` is about 1024 bytes. */
const EVENT_BYTES = 1024;
const PAD = 'x'.repeat(
  EVENT_BYTES - JSON.stringify({ phase: 'm', id: 10_000, sentAt: 12_345.678901, body: '' }).length,
);
export function makeEvent(phase: 'w' | 'm', id: number): BenchEvent {
  return { phase, id, sentAt: performance.now(), body: PAD };
}
export const EVENT_SIZE = Buffer.byteLength(JSON.stringify(makeEvent('m', 10_000)));

/** What every RPC server does, in every system: echo the id. */
export function serve(request: RpcRequest): RpcReply {
  return { id: request.id, ok: true };
}

const REQUEST_BODY = 'ping';

export abstract class BaseAdapter implements Adapter {
  abstract readonly name: string;
  protected spec!: BrokerSpec;
  private sink?: Sink;

  abstract setup(broker: BrokerSpec): Promise<void>;
  abstract teardown(): Promise<void>;
  /** Publishes one event to `spec.exchange` with `routingKey`, persistent; settles as the system's publish does. */
  protected abstract publish(event: BenchEvent, routingKey: string): Promise<unknown>;
  /** One RPC call to `spec.rpcQueue` (or its route); resolves with the decoded reply. */
  protected abstract call(request: RpcRequest): Promise<RpcReply>;

  /** The subscriber's handler calls this with each decoded event; the system acks after it returns. */
  readonly deliver = (event: BenchEvent): void => {
    this.sink?.record(event);
  };

  /** Boot scenario: handler `index` calls this; it must only ever see the event with id `index`. */
  readonly deliverTo = (index: number, event: BenchEvent): void => {
    if (event?.id === index) this.sink?.record(event);
    else if (this.sink) this.sink.unexpected++;
  };

  async pubsub(n: number): Promise<PubsubResult> {
    const warm = Math.min(this.spec.warmup, n);
    const sink = new Sink(n, warm);
    this.sink = sink;
    const key = this.spec.routingKey;
    await pump(warm, this.spec.publishWindow, (i) => this.publish(makeEvent('w', i), key));
    await Promise.race([
      sink.warmedUp,
      sleep(this.spec.timeoutMs).then(() => Promise.reject(new Error('warm-up events never all arrived'))),
    ]);
    collectGarbage();

    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await pump(n, this.spec.publishWindow, (i) => this.publish(makeEvent('m', i), key));
    const published = performance.now();
    const deadline = Math.max(0, this.spec.timeoutMs - (published - t0));
    await Promise.race([sink.complete, sleep(deadline)]);
    const cpu = process.cpuUsage(cpu0);
    const end = sink.distinct === n ? sink.lastAt : performance.now();
    // Late duplicates (a redelivery) would arrive shortly after: give them a moment to show up.
    await sleep(300);
    const latencies = sink.latency.subarray(0, n).filter((_, i) => sink.seen[i] > 0);
    const seconds = (end - t0) / 1000;
    return {
      kind: 'pubsub',
      n,
      seconds,
      msgsPerSec: sink.distinct / seconds,
      publishSeconds: (published - t0) / 1000,
      lost: n - sink.distinct,
      duplicated: sink.duplicated,
      unexpected: sink.unexpected,
      e2eP50Ms: percentile(latencies, 0.5),
      e2eP99Ms: percentile(latencies, 0.99),
      messageBytes: EVENT_SIZE,
      ...cpuFigures(cpu, n, 'cpuUsPerMsg'),
    };
  }

  async firstDeliveries() {
    const n = this.spec.handlers;
    const sink = new Sink(n, 0);
    this.sink = sink;
    const t0 = performance.now();
    await pump(n, this.spec.publishWindow, (i) => this.publish(makeEvent('m', i), handlerKey(i)));
    await Promise.race([sink.complete, sleep(this.spec.timeoutMs)]);
    const ms = (sink.distinct === n ? sink.lastAt : performance.now()) - t0;
    await sleep(300);
    return { ms, lost: n - sink.distinct, duplicated: sink.duplicated, misrouted: sink.unexpected };
  }

  rpcSequential(n: number): Promise<RpcResult> {
    return this.rpc(n, 1);
  }

  rpcConcurrent(n: number, inFlight: number): Promise<RpcResult> {
    return this.rpc(n, inFlight);
  }

  private async rpc(n: number, inFlight: number): Promise<RpcResult> {
    const warm = Math.min(this.spec.warmup, n);
    const warmUp = await this.calls(warm, inFlight, -1_000_000);
    if (warmUp.failed > 0) throw new Error(`warm-up calls failed: ${warmUp.firstError}`);
    collectGarbage();
    const heap: number[] = [];
    const sampleHeap = () => heap.push(process.memoryUsage().heapUsed / 2 ** 20);
    const sampler = setInterval(sampleHeap, 50);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const run = await this.calls(n, inFlight, 0);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(sampler);
    if (heap.length === 0) sampleHeap();
    const heapSorted = Float64Array.from(heap).sort();
    const sorted = run.latency.slice().sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      kind: 'rpc',
      n,
      inFlight,
      seconds,
      callsPerSec: n / seconds,
      p50Ms: percentileSorted(sorted, 0.5),
      p99Ms: percentileSorted(sorted, 0.99),
      meanMs: sum / n,
      maxMs: sorted[n - 1] ?? 0,
      heapMb: percentileSorted(heapSorted, 0.5),
      heapPeakMb: heapSorted[heapSorted.length - 1],
      wrongReplies: run.wrong,
      failed: run.failed,
      firstError: run.firstError,
      ...cpuFigures(cpu, n, 'cpuUsPerCall'),
    };
  }

  /** `n` calls, `inFlight` at a time: each worker starts its next call when its reply arrives. */
  private async calls(n: number, inFlight: number, idBase: number) {
    const latency = new Float64Array(n);
    let next = 0;
    let wrong = 0;
    let failed = 0;
    let firstError: string | undefined;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        const id = idBase + i;
        const start = performance.now();
        try {
          const reply = await this.call({ id, body: REQUEST_BODY });
          if (reply?.id !== id) wrong++;
        } catch (err) {
          failed++;
          firstError ??= err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        }
        latency[i] = performance.now() - start;
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, Math.max(n, 1)) }, worker));
    return { latency, wrong, failed, firstError };
  }
}

/** Counts deliveries by id: every measured id must arrive exactly once. */
class Sink {
  readonly seen: Uint8Array;
  readonly latency: Float64Array;
  distinct = 0;
  duplicated = 0;
  unexpected = 0;
  lastAt = 0;
  private warm = 0;
  readonly warmedUp: Promise<void>;
  readonly complete: Promise<void>;
  private onWarm!: () => void;
  private onComplete!: () => void;

  constructor(
    private readonly n: number,
    private readonly warmTarget: number,
  ) {
    this.seen = new Uint8Array(n);
    this.latency = new Float64Array(n);
    this.warmedUp = new Promise((resolve) => (this.onWarm = resolve));
    this.complete = new Promise((resolve) => (this.onComplete = resolve));
    if (warmTarget === 0) this.onWarm();
    if (n === 0) this.onComplete();
  }

  record(event: BenchEvent): void {
    const now = performance.now();
    if (event?.phase === 'w') {
      if (++this.warm === this.warmTarget) this.onWarm();
      return;
    }
    const id = event?.id;
    if (event?.phase !== 'm' || !Number.isInteger(id) || id < 0 || id >= this.n) {
      this.unexpected++;
      return;
    }
    const count = this.seen[id];
    if (count === 0) {
      this.latency[id] = now - event.sentAt;
      this.lastAt = now;
      if (++this.distinct === this.n) this.onComplete();
    } else {
      this.duplicated++;
    }
    if (count < 255) this.seen[id] = count + 1;
  }
}

/**
 * CPU time of the process over a measured phase: user + system, per message or call, in µs. On a
 * machine shared with the broker this is the steadier figure: waiting for the broker costs none.
 */
function cpuFigures<K extends string>(cpu: NodeJS.CpuUsage, n: number, perOp: K) {
  return {
    [perOp]: n > 0 ? (cpu.user + cpu.system) / n : NaN,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
  } as Record<K, number> & { cpuUserMs: number; cpuSystemMs: number };
}

/** Runs `publish(0..n-1)` keeping at most `window` promises unsettled. */
export function pump(n: number, window: number, publish: (i: number) => Promise<unknown>): Promise<void> {
  if (n === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    let next = 0;
    let inFlight = 0;
    let settled = 0;
    let failed = false;
    const launch = () => {
      while (!failed && inFlight < window && next < n) {
        const i = next++;
        inFlight++;
        publish(i).then(
          () => {
            inFlight--;
            if (++settled === n) resolve();
            else launch();
          },
          (err: unknown) => {
            failed = true;
            reject(err);
          },
        );
      }
    };
    launch();
  });
}

export function percentile(values: Float64Array, q: number): number {
  return percentileSorted(values.slice().sort(), q);
}

/** Nearest-rank percentile of an ascending array. */
export function percentileSorted(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

// The wire check (`npm run bench -- --wire-check`): does each system's publish wait for the
// broker's confirm? Every selected system runs a small pub/sub trial and a small sequential RPC
// trial through FrameCountingProxy, which counts per connection confirm.select, basic.publish and
// the broker's basic.ack frames. In the pub/sub trial the proxy holds back everything the broker
// sends by --wire-delay-ms and the trial publishes one message at a time (publish window 1): a
// publish that settles on the broker's confirm then takes at least that delay; one that settles
// once written to the socket takes far less.
import amqplib from 'amqplib';
import { performance } from 'node:perf_hooks';
import type { BrokerAdmin } from '../broker.js';
import { trialSpec } from '../broker.js';
import type { BrokerSpec, PubsubResult, RpcResult, Scenario } from '../harness.js';
import { runsScenario, type SystemName } from '../systems.js';
import { runWorker } from '../trial.js';
import { FrameCountingProxy, type ConnectionWire } from './proxy.js';

export interface WireOptions {
  systems: SystemName[];
  /** Messages (pub/sub) and calls (RPC) per trial. */
  messages: number;
  /** How long the proxy holds back the broker's bytes in the pub/sub trial. */
  delayMs: number;
  prefetch: number;
  trialTimeoutS: number;
}

export interface WireTrial {
  system: SystemName;
  scenario: Scenario;
  brokerDelayMs: number;
  connections: ConnectionWire[];
  /** Pub/sub: how long one publish took to settle, on average, with one in flight. */
  msPerPublish?: number;
  /** Pub/sub: publishes settled no sooner than the broker's confirm could have arrived. */
  waitsForConfirm?: boolean;
  error?: string;
}

const SCENARIOS: Scenario[] = ['pubsub', 'rpc-seq'];

export interface WireControl {
  /** amqplib through the same delaying proxy: one plain channel, one confirm channel. */
  plainMsPerPublish: number;
  confirmMsPerPublish: number;
  connections: ConnectionWire[];
  /** Why the check cannot be trusted, if it cannot: the control did not come out as it must. */
  broken?: string;
}

/**
 * Before the systems: proves the check can tell the two apart. amqplib publishes `messages` one at
 * a time on a plain channel (settled once written) and `messages` on a confirm channel (settled on
 * the broker's ack) through the delaying proxy; the frame counts must match exactly.
 */
export async function wireControl(url: string, messages: number, delayMs: number): Promise<WireControl> {
  const target = new URL(url);
  const proxy = await FrameCountingProxy.start({ host: target.hostname, port: Number(target.port || 5672) }, delayMs);
  try {
    const connection = await amqplib.connect(proxy.urlFor(url), { noDelay: true });
    // Published to the default exchange with a routing key no queue has: the broker drops and confirms them.
    const nowhere = `bench.wire-control.${process.pid}`;
    const plain = await connection.createChannel();
    let t0 = performance.now();
    for (let i = 0; i < messages; i++) {
      plain.publish('', nowhere, Buffer.from('x'));
      // What a plain publish settles on: the bytes handed to the socket.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const plainMsPerPublish = (performance.now() - t0) / messages;
    const confirm = await connection.createConfirmChannel();
    t0 = performance.now();
    for (let i = 0; i < messages; i++) {
      await new Promise<void>((resolve, reject) =>
        confirm.publish('', nowhere, Buffer.from('x'), {}, (err) => (err ? reject(new Error(String(err))) : resolve())),
      );
    }
    const confirmMsPerPublish = (performance.now() - t0) / messages;
    await connection.close();
    const [wire] = proxy.connections;
    const faults = [
      plainMsPerPublish >= 0.9 * delayMs ? `plain publishes took ${plainMsPerPublish.toFixed(1)} ms each` : '',
      confirmMsPerPublish < 0.9 * delayMs
        ? `confirmed publishes took only ${confirmMsPerPublish.toFixed(1)} ms each`
        : '',
      wire?.publishes !== 2 * messages ? `${wire?.publishes} basic.publish counted, not ${2 * messages}` : '',
      wire?.confirmSelects !== 1 ? `${wire?.confirmSelects} confirm.select counted, not 1` : '',
      wire?.confirmedPublishes !== messages ? `${wire?.confirmedPublishes} confirmed, not ${messages}` : '',
    ].filter(Boolean);
    return {
      plainMsPerPublish,
      confirmMsPerPublish,
      connections: proxy.connections,
      broken: faults.length ? faults.join('; ') : undefined,
    };
  } finally {
    await proxy.close();
  }
}

export async function wireCheck(url: string, admin: BrokerAdmin, runId: string, options: WireOptions) {
  const target = new URL(url);
  const trials: WireTrial[] = [];
  for (const scenario of SCENARIOS) {
    for (const system of options.systems.filter((s) => runsScenario(s, scenario))) {
      const delayMs = scenario === 'pubsub' ? options.delayMs : 0;
      const proxy = await FrameCountingProxy.start(
        { host: target.hostname, port: Number(target.port || 5672) },
        delayMs,
      );
      const tag = `${runId}.wire.${scenario}.${system}`;
      const spec: BrokerSpec = trialSpec(proxy.urlFor(url), tag, scenario, {
        prefetch: options.prefetch,
        publishWindow: 1,
        warmup: 0,
        timeoutMs: 60_000,
        storePool: 1,
      });
      const trial: WireTrial = { system, scenario, brokerDelayMs: delayMs, connections: proxy.connections };
      try {
        const output = await runWorker(
          { system, spec, n: options.messages, inFlight: 1 },
          false,
          options.trialTimeoutS,
        );
        const result = output.result as PubsubResult | RpcResult;
        if (result.kind === 'pubsub') {
          trial.msPerPublish = (result.publishSeconds * 1000) / result.n;
          // A timer may fire a little early; a publish that does not wait takes a small fraction of the delay.
          trial.waitsForConfirm = trial.msPerPublish >= 0.9 * delayMs;
        }
      } catch (err) {
        trial.error = (err as Error).message;
      }
      await proxy.close();
      await admin.cleanup({ ...spec, url });
      trials.push(trial);
    }
  }
  return trials;
}

/** One line per connection of every trial. */
export function wireTable(trials: WireTrial[]) {
  const rows: string[][] = [];
  for (const t of trials) {
    if (t.error) rows.push([t.system, t.scenario, `FAILED: ${t.error}`, '', '', '', '', '', '', '']);
    for (const c of t.connections) {
      rows.push([
        t.system,
        t.scenario,
        c.name,
        String(c.confirmSelects),
        String(c.publishes),
        String(c.brokerAcks),
        String(c.confirmedPublishes),
        String(c.brokerNacks),
        String(c.clientAcks),
        c.publishes > 0 && t.msPerPublish !== undefined
          ? `${t.msPerPublish.toFixed(1)} (${t.waitsForConfirm ? 'waits' : 'does not wait'})`
          : '',
      ]);
    }
  }
  return {
    headers: [
      'system',
      'scenario',
      'connection',
      'confirm.select',
      'basic.publish',
      'broker basic.ack',
      'publishes confirmed',
      'broker basic.nack',
      'client basic.ack',
      'ms per publish',
    ],
    align: 'lllrrrrrrr',
    rows,
  };
}

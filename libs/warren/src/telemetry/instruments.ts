import { ATTR, RABBITMQ } from './attributes.js';
import type { Settlement } from './outcomes.js';
import type { Counter, Histogram, Meter, ObservableResult } from './otel-types.js';

/**
 * Warren's metrics. Names are the messaging conventions' where they have one
 * (`messaging.client.sent.messages`, `messaging.client.consumed.messages`,
 * `messaging.process.duration`), `warren.*` otherwise. Durations are in seconds, as the conventions
 * ask. Made once per MeterProvider; each method is called only when metrics are on.
 */
/** The gauges read from the running app's parts (`addGaugeSource()` in telemetry.ts). */
export type GaugeName = 'buffered' | 'rpcInFlight' | 'connectionUp' | 'consumersActive';

export class Instruments {
  private readonly sent: Counter;
  private readonly confirm: Histogram;
  private readonly consumed: Counter;
  private readonly processing: Histogram;
  private readonly retried: Counter;
  private readonly deadLettered: Counter;
  private readonly rpc: Histogram;

  constructor(meter: Meter, read: (gauge: GaugeName, result: ObservableResult) => void) {
    this.sent = meter.createCounter('messaging.client.sent.messages', {
      description: 'Messages Warren published (publishes, RPC requests, retries and dead letters), confirmed or failed',
      unit: '{message}',
    });
    this.confirm = meter.createHistogram('warren.publish.confirm.duration', {
      description: "Time from a publish to the broker's confirm (or its failure), buffering during an outage included",
      unit: 's',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS },
    });
    this.consumed = meter.createCounter('messaging.client.consumed.messages', {
      description: 'Deliveries a consumer took from its queue, per handler',
      unit: '{message}',
    });
    this.processing = meter.createHistogram('messaging.process.duration', {
      description: 'Time from a delivery to its settlement (handler, ack or failure policy), per handler and outcome',
      unit: 's',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS },
    });
    this.retried = meter.createCounter('warren.messages.retried', {
      description: 'Failed deliveries sent to a retry queue',
      unit: '{message}',
    });
    this.deadLettered = meter.createCounter('warren.messages.dead_lettered', {
      description: 'Deliveries moved to a dead-letter queue, by reason',
      unit: '{message}',
    });
    this.rpc = meter.createHistogram('warren.rpc.client.duration', {
      description: 'RPC calls from request to reply, timeout or failure, by outcome',
      unit: 's',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS },
    });
    const gauge = (name: string, of: GaugeName, description: string, unit: string) =>
      meter.createObservableGauge(name, { description, unit }).addCallback((result) => read(of, result));
    gauge('warren.publish.buffered', 'buffered', 'Publishes waiting in memory for the broker', '{message}');
    gauge('warren.rpc.client.in_flight', 'rpcInFlight', 'RPC calls waiting for their reply', '{call}');
    gauge('warren.connection.up', 'connectionUp', '1 while the connection of a role is up, else 0', '1');
    gauge('warren.consumers.active', 'consumersActive', 'Consumers consuming from their queue', '{consumer}');
  }

  /** A publish settled: confirmed, or failed with `error`. `startedAt` is from `performance.now()`. */
  published(exchange: string, startedAt: number, error?: unknown): void {
    const attributes = {
      [ATTR.system]: RABBITMQ,
      [ATTR.operationName]: 'publish',
      [ATTR.destination]: exchange,
      ...(error !== undefined && { [ATTR.errorType]: errorType(error) }),
    };
    this.sent.add(1, attributes);
    this.confirm.record(seconds(startedAt), attributes);
  }

  /** A delivery settled, handled or through its failure policy. */
  processed(
    handler: string,
    queue: string,
    startedAt: number,
    settlement: Settlement,
    error: unknown,
    failed: boolean,
  ): void {
    const consumed = { [ATTR.system]: RABBITMQ, [ATTR.consumerGroup]: queue, [ATTR.handler]: handler };
    this.consumed.add(1, { ...consumed, [ATTR.operationName]: 'process' });
    this.processing.record(seconds(startedAt), {
      ...consumed,
      [ATTR.operationName]: 'process',
      [ATTR.outcome]: settlement.outcome,
      ...(failed && { [ATTR.errorType]: errorType(error) }),
    });
    if (settlement.outcome === 'retried') this.retried.add(1, consumed);
    else if (settlement.outcome === 'dead-lettered') {
      this.deadLettered.add(1, { ...consumed, [ATTR.deadLetterReason]: settlement.reason });
    }
  }

  /** An RPC call ended: `outcome` is `reply`, `timeout`, `remote-error`, `no-route`, …. */
  called(queue: string, startedAt: number, outcome: string, error?: unknown): void {
    const attributes = {
      [ATTR.system]: RABBITMQ,
      [ATTR.operationName]: 'call',
      [ATTR.destination]: queue,
      [ATTR.rpcOutcome]: outcome,
      ...(error !== undefined && { [ATTR.errorType]: errorType(error) }),
    };
    this.sent.add(1, attributes);
    this.rpc.record(seconds(startedAt), attributes);
  }
}

export function createInstruments(
  meter: Meter,
  read: (gauge: GaugeName, result: ObservableResult) => void,
): Instruments {
  return new Instruments(meter, read);
}

/** Seconds from 1 ms to 10 s: a confirm or a handler is rarely quicker, an RPC timeout rarely longer. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function seconds(startedAt: number): number {
  return (performance.now() - startedAt) / 1000;
}

/** The error's class name, as the conventions' `error.type` asks: low-cardinality, never the message. */
export function errorType(error: unknown): string {
  return error instanceof Error ? error.name || error.constructor.name : '_OTHER';
}

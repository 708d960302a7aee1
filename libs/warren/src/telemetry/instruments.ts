import { ATTR, RABBITMQ } from './attributes.js';
import type { Settlement } from './outcomes.js';
import type { Attributes, Counter, Histogram, Meter, ObservableResult } from './otel-types.js';

/**
 * Warren's metrics. Names are the messaging conventions' where they have one
 * (`messaging.client.sent.messages`, `messaging.client.consumed.messages`,
 * `messaging.process.duration`), `warren.*` otherwise. Durations are in seconds, as the conventions
 * ask. Made once per MeterProvider; each method is called only when metrics are on.
 */
/** The gauges read from the running app's parts (`addGaugeSource()` in telemetry.ts). */
export type GaugeName = 'buffered' | 'rpcInFlight' | 'connectionUp' | 'consumersActive';

interface InstrumentSpec {
  name: string;
  description: string;
  unit: string;
}

/** Counters, all of messages; each is a field of `Instruments.counters`. */
const COUNTERS = {
  sent: {
    name: 'messaging.client.sent.messages',
    description: 'Messages Warren published (publishes, RPC requests, retries and dead letters), confirmed or failed',
    unit: '{message}',
  },
  consumed: {
    name: 'messaging.client.consumed.messages',
    description: 'Deliveries a consumer took from its queue, per handler',
    unit: '{message}',
  },
  retried: {
    name: 'warren.messages.retried',
    description: 'Failed deliveries sent to a retry queue',
    unit: '{message}',
  },
  deadLettered: {
    name: 'warren.messages.dead_lettered',
    description: 'Deliveries moved to a dead-letter queue, by reason',
    unit: '{message}',
  },
} satisfies Record<string, InstrumentSpec>;

/** Histograms of durations, all in seconds on `LATENCY_BUCKETS`; each is a field of `Instruments.histograms`. */
const HISTOGRAMS = {
  confirm: {
    name: 'warren.publish.confirm.duration',
    description: "Time from a publish to the broker's confirm (or its failure), buffering during an outage included",
    unit: 's',
  },
  processing: {
    name: 'messaging.process.duration',
    description: 'Time from a delivery to its settlement (handler, ack or failure policy), per handler and outcome',
    unit: 's',
  },
  rpc: {
    name: 'warren.rpc.client.duration',
    description: 'RPC calls from request to reply, timeout or failure, by outcome',
    unit: 's',
  },
} satisfies Record<string, InstrumentSpec>;

/** Gauges, each read from its source when the metrics are collected. */
const GAUGES: Record<GaugeName, InstrumentSpec> = {
  buffered: {
    name: 'warren.publish.buffered',
    description: 'Publishes waiting in memory for the broker',
    unit: '{message}',
  },
  rpcInFlight: {
    name: 'warren.rpc.client.in_flight',
    description: 'RPC calls waiting for their reply',
    unit: '{call}',
  },
  connectionUp: {
    name: 'warren.connection.up',
    description: '1 while the connection of a role is up, else 0',
    unit: '1',
  },
  consumersActive: {
    name: 'warren.consumers.active',
    description: 'Consumers consuming from their queue',
    unit: '{consumer}',
  },
};

export class Instruments {
  private readonly counters: { [K in keyof typeof COUNTERS]: Counter };
  private readonly histograms: { [K in keyof typeof HISTOGRAMS]: Histogram };
  /** Attribute sets kept for reuse: per exchange published to, per RPC queue and outcome, per handler. */
  private readonly publishes = new Map<string, Attributes>();
  private readonly calls = new Map<string, Map<string, Attributes>>();
  private readonly handlers = new Map<string, Map<string, HandlerAttributes>>();

  constructor(meter: Meter, read: (gauge: GaugeName, result: ObservableResult) => void) {
    this.counters = each(COUNTERS, ({ name, description, unit }) => meter.createCounter(name, { description, unit }));
    this.histograms = each(HISTOGRAMS, ({ name, description, unit }) =>
      meter.createHistogram(name, { description, unit, advice: { explicitBucketBoundaries: LATENCY_BUCKETS } }),
    );
    for (const [of, { name, description, unit }] of Object.entries(GAUGES) as [GaugeName, InstrumentSpec][]) {
      meter.createObservableGauge(name, { description, unit }).addCallback((result) => read(of, result));
    }
  }

  /** A publish settled: confirmed, or failed with `error`. `startedAt` is from `performance.now()`. */
  published(exchange: string, startedAt: number, error?: unknown): void {
    let attributes = error === undefined ? this.publishes.get(exchange) : undefined;
    if (attributes === undefined) {
      attributes = { [ATTR.system]: RABBITMQ, [ATTR.operationName]: 'publish', [ATTR.destination]: exchange };
      if (error === undefined) this.publishes.set(exchange, attributes);
      else attributes[ATTR.errorType] = errorType(error);
    }
    this.counters.sent.add(1, attributes);
    this.histograms.confirm.record(seconds(startedAt), attributes);
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
    const of = this.handlerAttributes(handler, queue);
    this.counters.consumed.add(1, of.consumed);
    let processed = failed ? undefined : of.settled.get(settlement);
    if (processed === undefined) {
      processed = { ...of.consumed, [ATTR.outcome]: settlement.outcome };
      // An error's class is one of a few per handler, yet not known ahead: a failed delivery builds its own.
      if (failed) processed[ATTR.errorType] = errorType(error);
      else of.settled.set(settlement, processed);
    }
    this.histograms.processing.record(seconds(startedAt), processed);
    if (settlement.outcome === 'retried') this.counters.retried.add(1, of.group);
    else if (settlement.outcome === 'dead-lettered') {
      const reason = settlement.reason ?? '';
      let deadLettered = of.deadLettered.get(reason);
      if (deadLettered === undefined) {
        deadLettered = { ...of.group, [ATTR.deadLetterReason]: settlement.reason };
        of.deadLettered.set(reason, deadLettered);
      }
      this.counters.deadLettered.add(1, deadLettered);
    }
  }

  /** An RPC call ended: `outcome` is `reply`, `timeout`, `remote-error`, `no-route`, …. */
  called(queue: string, startedAt: number, outcome: string, error?: unknown): void {
    let byOutcome = this.calls.get(queue);
    if (byOutcome === undefined) this.calls.set(queue, (byOutcome = new Map()));
    let attributes = error === undefined ? byOutcome.get(outcome) : undefined;
    if (attributes === undefined) {
      attributes = {
        [ATTR.system]: RABBITMQ,
        [ATTR.operationName]: 'call',
        [ATTR.destination]: queue,
        [ATTR.rpcOutcome]: outcome,
      };
      if (error === undefined) byOutcome.set(outcome, attributes);
      else attributes[ATTR.errorType] = errorType(error);
    }
    this.counters.sent.add(1, attributes);
    this.histograms.rpc.record(seconds(startedAt), attributes);
  }

  /**
   * A handler's attribute sets, made on its first delivery and kept: every measurement of a
   * delivery reuses them instead of building its own. By queue too: a server-named queue's name
   * changes with each connection. Bounded by what the app declares (handlers, queues, a handful of
   * outcomes and reasons), not by its traffic.
   */
  private handlerAttributes(handler: string, queue: string): HandlerAttributes {
    let byQueue = this.handlers.get(handler);
    if (byQueue === undefined) this.handlers.set(handler, (byQueue = new Map()));
    let found = byQueue.get(queue);
    if (found === undefined) {
      const group = { [ATTR.system]: RABBITMQ, [ATTR.consumerGroup]: queue, [ATTR.handler]: handler };
      found = {
        group,
        consumed: { ...group, [ATTR.operationName]: 'process' },
        settled: new Map(),
        deadLettered: new Map(),
      };
      byQueue.set(queue, found);
    }
    return found;
  }
}

/** One handler's measurement attributes on one queue (see `handlerAttributes`). */
interface HandlerAttributes {
  /** The queue and the handler: what the retry and dead-letter counters carry. */
  readonly group: Attributes;
  /** The same with the operation: the consumed counter's. */
  readonly consumed: Attributes;
  /** The processing duration's, by settlement (frozen constants, `outcomes.ts`). */
  readonly settled: Map<Settlement, Attributes>;
  /** The dead-letter counter's, by reason. */
  readonly deadLettered: Map<string, Attributes>;
}

export function createInstruments(
  meter: Meter,
  read: (gauge: GaugeName, result: ObservableResult) => void,
): Instruments {
  return new Instruments(meter, read);
}

/** Seconds from 1 ms to 10 s: a confirm or a handler is rarely quicker, an RPC timeout rarely longer. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One instrument per entry of `table`, under the same keys. */
function each<T extends Record<string, InstrumentSpec>, I>(
  table: T,
  make: (spec: InstrumentSpec) => I,
): { [K in keyof T]: I } {
  return Object.fromEntries(Object.entries(table).map(([key, spec]) => [key, make(spec)])) as { [K in keyof T]: I };
}

function seconds(startedAt: number): number {
  return (performance.now() - startedAt) / 1000;
}

/** The error's class name, as the conventions' `error.type` asks: low-cardinality, never the message. */
export function errorType(error: unknown): string {
  return error instanceof Error ? error.name || error.constructor.name : '_OTHER';
}

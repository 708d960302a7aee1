import type { EventContract, RpcContract } from '../contracts/contracts.js';
import type { HandlerKind } from '../decorators/handler-metadata.js';
import type { FailureMode, FailurePolicy } from '../topology/failure-policy.js';
import type {
  BindingDeclaration,
  ConsumerTopology,
  ExchangeBindingDeclaration,
  ExchangeDeclaration,
  QueueDeclaration,
} from '../topology/topology.js';
import type { WithDeclarers } from '../topology/topology-builder.js';
import type { StandardSchemaV1 } from '../validation/standard-schema.js';

/**
 * The read-only view of an app's declared topology: what the registry's topology builder
 * collected at boot, as plain data. AsyncAPI documents, the `warren topology` CLI and tests read
 * it; nothing in it reaches back into the live objects.
 */
export interface WarrenTopology {
  /** One entry per WarrenModule connection, the default one first. */
  connections: ConnectionTopology[];
}

export interface ConnectionTopology {
  /** `default`, or the name given to `WarrenModule.forRoot({ name })`. */
  connection: string;
  /** Every exchange the app declares, with who declared it (a handler's `Class.method`, or the module options). */
  exchanges: WithDeclarers<Required<ExchangeDeclaration>>[];
  /** Every named queue, failure-policy queues (retry, dead-letter) included. Server-named queues are on their handler. */
  queues: WithDeclarers<Required<QueueDeclaration>>[];
  /** Every binding of a named queue; those of server-named queues are on their handler. */
  bindings: WithDeclarers<Required<BindingDeclaration>>[];
  /** Every exchange-to-exchange binding (`topology.exchangeBindings`, `@Subscribe(…, { from })`). */
  exchangeBindings: WithDeclarers<Required<ExchangeBindingDeclaration>>[];
  handlers: HandlerTopology[];
}

/** What a handler's kind and contract are: recorded when it is registered. */
export interface HandlerAbout {
  kind: HandlerKind;
  contract?: EventContract<unknown> | RpcContract<unknown, unknown>;
}

export interface HandlerTopology extends HandlerAbout {
  /** `OrdersService.onPlaced`, or a runtime subscription's label. */
  label: string;
  /** Its queue; `name` is '' for a server-named (temporary, exclusive) queue. */
  queue: Required<QueueDeclaration>;
  /** Its queue's bindings (`queue` is '' for a server-named queue). */
  bindings: Required<BindingDeclaration>[];
  prefetch: number;
  /** A batch handler's batching: up to `size` messages per call, or fewer after `timeoutMs`. */
  batch?: { size: number; timeoutMs: number };
  failure: {
    mode: FailureMode;
    retryDelays: number[];
    /** `delay-ladder` when its retries wait in the delay ladder; absent for the retry queues. */
    retryThrough?: 'delay-ladder';
    /** Where its dead letters go; absent when it has none. */
    deadLetter?: { exchange: string; routingKey: string };
  };
  /** The Standard Schema its payloads are checked against on receipt. */
  schema?: StandardSchemaV1;
}

/** What one registered consumer tells the view. */
export interface RegisteredConsumer {
  label: string;
  topology: ConsumerTopology & { failure: FailurePolicy };
  about: HandlerAbout;
  schema?: StandardSchemaV1;
}

/**
 * The key under which a ConsumerRegistry answers with its connection's topology. A symbol of the
 * global registry, so the CLI finds the registries of an app that loaded the other build (ESM or
 * CommonJS) of the library, whose classes are not its own.
 */
export const TOPOLOGY_READER: unique symbol = Symbol.for('nestjs-warren.topology') as never;

export function connectionTopology(
  connection: string,
  declarations: Pick<ConnectionTopology, 'exchanges' | 'queues' | 'bindings' | 'exchangeBindings'>,
  consumers: readonly RegisteredConsumer[],
): ConnectionTopology {
  return {
    connection,
    exchanges: declarations.exchanges,
    queues: declarations.queues,
    bindings: declarations.bindings,
    exchangeBindings: declarations.exchangeBindings,
    handlers: consumers.map(({ label, topology, about, schema }) => ({
      label,
      kind: about.kind,
      ...(about.contract ? { contract: about.contract } : {}),
      queue: { ...topology.queue },
      bindings: topology.bindings.map((b) => ({ ...b })),
      prefetch: topology.prefetch,
      ...(topology.batch ? { batch: { ...topology.batch } } : {}),
      failure: {
        mode: topology.failure.mode,
        retryDelays: [...topology.failure.retryDelays],
        ...(topology.failure.retryThrough ? { retryThrough: topology.failure.retryThrough } : {}),
        ...(topology.failure.deadLetter ? { deadLetter: { ...topology.failure.deadLetter } } : {}),
      },
      ...(schema ? { schema } : {}),
    })),
  };
}

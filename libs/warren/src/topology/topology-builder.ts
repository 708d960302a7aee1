import { type FailureMode, type FailureOptions, type FailurePolicy, resolveFailurePolicy } from './failure-policy.js';
import type { StandardSchemaV1 } from '../validation/standard-schema.js';
import { TopologyError } from '../warren.errors.js';
import {
  BUILT_IN_EXCHANGES,
  EXCHANGE_TYPES,
  exchangeBindingEndProblem,
  isExchangeType,
  isPredeclaredExchange,
  isReservedName,
  MAX_SHORT_STRING_BYTES,
  prefetchProblem,
  type QueueType,
  queueTypeOf,
  queueTypeProblem,
  RESERVED_PREFIX,
} from './amqp-rules.js';
import { bindingKeyProblem } from './binding-key.js';
import { type ConsumerQueueSpec, typedQueue, withBrokerDeadLettering } from './consumer-queue.js';
import {
  checkServiceAgreement,
  checkServiceOverlaps,
  type ServiceMember,
  type ServiceTopology,
} from './service-queue.js';
import { batchPrefetch, batchPrefetchProblem, type BatchSettings } from './batch.js';
import { concurrencyProblem, effectiveConcurrency } from './concurrency.js';
import { stableJson } from './stable-json.js';
import {
  type BindingDeclaration,
  type ConsumerTopology,
  type ExchangeBindingDeclaration,
  type ExchangeDeclaration,
  type QueueDeclaration,
  normalizeBinding,
  normalizeExchange,
  normalizeExchangeBinding,
  normalizeQueue,
} from './topology.js';

/**
 * What a handler declares, as its decorator (or a runtime subscription) recorded it. The builder
 * checks it against RabbitMQ's rules and derives the queue's arguments from it.
 */
export interface ConsumerSpec extends ConsumerQueueSpec {
  /** What to do when the handler fails; the module's default otherwise. */
  failure?: FailureMode | FailureOptions;
  /** Checked on receipt; a payload that fails it is poison. */
  schema?: StandardSchemaV1;
  exchange?: ExchangeDeclaration;
  /** Binding keys on `exchange`; ignored by fanout exchanges. */
  bindingKeys: string[];
  /** Binding arguments (headers exchanges: the headers to match and `x-match`). */
  bindingArguments?: Record<string, unknown>;
  /** Exchanges bound into `exchange` (`@Subscribe(…, { from })`): each declared, then bound with its keys. */
  sources?: ExchangeSource[];
  prefetch?: number;
  /** Handler invocations at once on this instance; default: the module's, else as many as the prefetch. */
  concurrency?: number;
  /** A batch handler's batching; its handler receives `(payloads, contexts)`. */
  batch?: BatchSettings;
  /**
   * Service queues (several handlers on one named queue): this handler gets what no other
   * handler's binding matches, and may overlap them.
   */
  fallback?: boolean;
}

/** An exchange a handler's exchange is bound from, as the decorator recorded it. */
export interface ExchangeSource {
  exchange: ExchangeDeclaration;
  /** Binding keys on the source; ignored by fanout and headers sources. */
  keys: string[];
  /** Headers sources: the headers to match and `x-match`. */
  arguments?: Record<string, unknown>;
}

interface Declared<T> {
  decl: T;
  by: string;
  /** Every declarer that agreed, the first one included: what a topology read-out names. */
  declarers: string[];
}

/** A declaration with every handler (or option) that made it, first one first. */
export type WithDeclarers<T> = T & { declaredBy: string[] };

/**
 * Collects every declaration of an app and refuses contradictions before anything reaches the
 * broker. A contradiction would otherwise surface as a PRECONDITION_FAILED channel error at boot
 * (or worse, after a reconnect), naming neither of the two places that disagree.
 */
export class TopologyBuilder {
  private readonly exchanges = new Map<string, Declared<Required<ExchangeDeclaration>>>();
  private readonly queues = new Map<string, Declared<Required<QueueDeclaration>>>();
  private readonly consumers = new Map<string, string>();
  private readonly bindings = new Map<string, Declared<Required<BindingDeclaration>>>();
  private readonly exchangeBindings = new Map<string, Declared<Required<ExchangeBindingDeclaration>>>();

  exchange(input: ExchangeDeclaration, by: string): Required<ExchangeDeclaration> {
    if (typeof input.name !== 'string') throw new TopologyError(`${by}: exchange name must be a string`);
    if (input.name === '') {
      throw new TopologyError(
        `${by}: the default exchange ("") cannot be declared or bound to; publish to a queue by name instead`,
      );
    }
    checkName('exchange', input.name, by);
    if (!isExchangeType(input.type)) {
      throw new TopologyError(
        `${by}: exchange "${input.name}" has type "${String(input.type)}"; expected one of ${EXCHANGE_TYPES.join(', ')}`,
      );
    }
    const decl = normalizeExchange(input);
    const predeclared = BUILT_IN_EXCHANGES.get(decl.name);
    if (predeclared && predeclared !== decl.type) {
      throw new TopologyError(
        `${by}: exchange "${decl.name}" is RabbitMQ's built-in ${predeclared} exchange, but is declared here as ${decl.type}`,
      );
    }
    return agreed(this.exchanges, 'Exchange', decl, by);
  }

  queue(input: QueueDeclaration, by: string): Required<QueueDeclaration> {
    checkQueueName(input, by);
    const decl = normalizeQueue(input);
    const typeProblem = queueTypeProblem({ ...decl, arguments: decl.arguments }, true);
    if (typeProblem) throw new TopologyError(`${by}: queue "${decl.name}": ${typeProblem}`);
    // Server-named queues are private to their declarer; there is nothing to compare.
    if (decl.name === '') return decl;
    return agreed(this.queues, 'Queue', decl, by);
  }

  binding(input: BindingDeclaration, by: string): Required<BindingDeclaration> {
    const exchange = this.exchanges.get(input.exchange)?.decl.type ?? BUILT_IN_EXCHANGES.get(input.exchange);
    if (!exchange) {
      throw new TopologyError(
        `${by}: binding of queue "${input.queue}" names exchange "${input.exchange}", which nothing declares; declare it first`,
      );
    }
    const problem = bindingKeyProblem(exchange, input.routingKey);
    if (problem) {
      throw new TopologyError(
        `${by}: invalid binding key "${input.routingKey}" on ${exchange} exchange "${input.exchange}": ${problem}`,
      );
    }
    const decl = normalizeBinding(input);
    if (decl.queue !== '') {
      const key = `${decl.exchange}\u0000${decl.queue}\u0000${decl.routingKey}\u0000${stableJson(decl.arguments)}`;
      const seen = this.bindings.get(key);
      if (seen) {
        addDeclarer(seen, by);
        return seen.decl;
      }
      this.bindings.set(key, { decl, by, declarers: [by] });
    }
    return decl;
  }

  /**
   * An exchange-to-exchange binding: both ends must be declared before it (or be RabbitMQ's
   * built-in `amq.*` ones), the key valid for the source's type, which is the one that routes.
   */
  exchangeBinding(input: ExchangeBindingDeclaration, by: string): Required<ExchangeBindingDeclaration> {
    const decl = normalizeExchangeBinding(input);
    const what = `binding of exchange "${String(decl.destination)}" to exchange "${String(decl.source)}"`;
    const ends = [
      ['source', decl.source],
      ['destination', decl.destination],
    ] as const;
    const types = ends.map(([end, name]) => {
      if (typeof name !== 'string') throw new TopologyError(`${by}: ${what}: ${end} must be an exchange name`);
      const problem = exchangeBindingEndProblem(name);
      if (problem) throw new TopologyError(`${by}: ${what}: ${problem}`);
      const type = this.exchanges.get(name)?.decl.type ?? BUILT_IN_EXCHANGES.get(name);
      if (!type) {
        throw new TopologyError(
          `${by}: ${what}: its ${end} "${name}" is an exchange nothing declares; declare it first (topology.exchanges)`,
        );
      }
      return type;
    });
    if (typeof decl.routingKey !== 'string') throw new TopologyError(`${by}: ${what}: routingKey must be a string`);
    const problem = bindingKeyProblem(types[0], decl.routingKey);
    if (problem) {
      throw new TopologyError(
        `${by}: ${what}: invalid binding key "${decl.routingKey}" on ${types[0]} exchange "${decl.source}": ${problem}`,
      );
    }
    const key = `${decl.source}\u0000${decl.destination}\u0000${decl.routingKey}\u0000${stableJson(decl.arguments)}`;
    const seen = this.exchangeBindings.get(key);
    if (seen) {
      addDeclarer(seen, by);
      return seen.decl;
    }
    this.exchangeBindings.set(key, { decl, by, declarers: [by] });
    return decl;
  }

  /** Declares everything a consumer needs and returns it in the order it must reach the broker. */
  consumer(
    spec: ConsumerSpec,
    by: string,
    defaultPrefetch: number,
    defaultFailure?: FailureOptions,
    defaultQueueType?: QueueType,
    defaultConcurrency?: number,
  ): ConsumerTopology & { failure: FailurePolicy } {
    const { queue, failure, queueType } = this.ownQueue(spec, by, defaultFailure, defaultQueueType);
    this.checkFree(queue.name, by);
    const { exchanges, bindings, exchangeBindings } = this.bindingsOf(spec, queue.name, by);
    // Never 0 (no limit), which RabbitMQ would refuse for a stream anyway.
    const prefetch = checkedPrefetch(spec, by, defaultPrefetch);
    const concurrency = checkedConcurrency(spec, by, defaultConcurrency, prefetch);
    const extra = this.failureTopology([failure], by);
    // Only now, with every check passed, is the queue marked as taken.
    if (queue.name !== '') this.consumers.set(queue.name, by);
    const stream = queueType === 'stream' ? { offset: spec.offset ?? ('next' as const) } : undefined;
    return {
      exchanges,
      ...extra,
      exchangeBindings,
      queue,
      bindings,
      prefetch,
      concurrency,
      failure,
      stream,
      ...(spec.batch && { batch: spec.batch }),
    };
  }

  /**
   * A service queue: one named queue, one consumer, the handlers of several methods, each given
   * the messages its own bindings match. The queue's settings must agree across the methods;
   * their bindings must not overlap (but for a fallback's); each method keeps its failure policy.
   * `members[0].by` names the queue's consumer in the errors of the checks every consumer passes.
   */
  serviceConsumer(
    members: readonly { spec: ConsumerSpec; by: string }[],
    defaultPrefetch: number,
    defaultFailure?: FailureOptions,
    defaultQueueType?: QueueType,
    defaultConcurrency?: number,
  ): ServiceTopology {
    const own = members.map(({ spec, by }) => ({
      spec,
      by,
      ...this.ownQueue(spec, by, defaultFailure, defaultQueueType),
    }));
    // One consumer hands each delivery to its own method as it comes; a batch would mix methods.
    const batched = own.filter((m) => m.spec.batch).map((m) => m.by);
    if (batched.length > 0) {
      throw new TopologyError(
        `Service queue "${own[0].queue.name}": ${own.map((m) => m.by).join(', ')} name one queue, and ` +
          `${batched.join(', ')} ${batched.length === 1 ? 'is a batch handler' : 'are batch handlers'}; ` +
          `a batch handler needs a queue of its own`,
      );
    }
    // A stream keeps one offset per consumer, and its readers do not settle messages one by one:
    // nothing a dispatcher could hand out safely.
    if (own.some((m) => m.queueType === 'stream')) {
      throw new TopologyError(
        `Service queue "${own[0].queue.name}": ${own.map((m) => m.by).join(', ')} name one stream; ` +
          `a stream has one handler per consumer: give each handler its own queue`,
      );
    }
    // A delivery names the exchange it was published to, not the one it reached the queue
    // through: the dispatcher could not tell which method a message that came `from` is for.
    const bound = own.find((m) => (m.spec.sources?.length ?? 0) > 0);
    if (bound) {
      throw new TopologyError(
        `${bound.by}: \`from\` (an exchange-to-exchange binding) cannot be used on service queue "${own[0].queue.name}"; ` +
          `declare the binding in the module's topology.exchangeBindings, or give the handler a queue of its own`,
      );
    }
    const prefetch = own.map(({ spec, by }) => checkedPrefetch(spec, by, defaultPrefetch));
    const concurrency = own.map(({ spec, by }, i) => checkedConcurrency(spec, by, defaultConcurrency, prefetch[i]));
    const name = own[0].queue.name;
    checkServiceAgreement(
      name,
      own.map((m, i) => ({
        by: m.by,
        queue: m.queue,
        failure: m.failure,
        prefetch: prefetch[i],
        concurrency: concurrency[i],
      })),
    );
    const all = own.map((m) => m.by).join(', ');
    this.checkFree(name, all);
    const exchanges = new Map<string, Required<ExchangeDeclaration>>();
    const bindings: Required<BindingDeclaration>[] = [];
    const routed: ServiceMember[] = own.map(({ spec, by, failure }) => {
      const own = this.bindingsOf(spec, name, by);
      for (const e of own.exchanges) exchanges.set(e.name, e);
      for (const b of own.bindings) if (!bindings.includes(b)) bindings.push(b);
      return { by, failure, fallback: spec.fallback === true, type: own.type, bindings: own.bindings };
    });
    checkServiceOverlaps(name, routed);
    const extra = this.failureTopology(
      own.map((m) => m.failure),
      all,
    );
    this.consumers.set(name, all);
    return {
      exchanges: [...exchanges.values()],
      ...extra,
      queue: own[0].queue,
      bindings,
      prefetch: prefetch[0],
      concurrency: concurrency[0],
      failure: own[0].failure,
      members: routed,
    };
  }

  /** The consumer's own queue, with the arguments its type and failure policy give it. */
  private ownQueue(
    spec: ConsumerSpec,
    by: string,
    defaultFailure: FailureOptions | undefined,
    defaultQueueType: QueueType | undefined,
  ): { queue: Required<QueueDeclaration>; failure: FailurePolicy; queueType: QueueType | undefined } {
    checkQueueName(spec.queue, by);
    const typed = typedQueue(spec, by, defaultQueueType);
    const queueType = queueTypeOf(typed.arguments ?? {});
    const failure = resolveFailurePolicy(by, normalizeQueue(typed), spec.failure, defaultFailure, {
      queueType,
      deadLetterQueueType: defaultQueueType,
    });
    // Only now is the queue's dead-lettering known, and with it the declaration to compare.
    const queue = this.queue(withBrokerDeadLettering(typed, spec.deliveryLimit, failure.deadLetter), by);
    return { queue, failure, queueType };
  }

  private checkFree(queue: string, by: string): void {
    if (queue === '') return;
    const other = this.consumers.get(queue);
    if (other) {
      throw new TopologyError(
        `Queue "${queue}" is consumed by both ${other} and ${by}: RabbitMQ would split its messages between them. ` +
          `Give each handler its own queue, bind one queue to several keys on one handler, or make it a ` +
          `service queue (several @Subscribe() handlers naming one queue)`,
      );
    }
  }

  private bindingsOf(
    spec: ConsumerSpec,
    queue: string,
    by: string,
  ): {
    exchanges: Required<ExchangeDeclaration>[];
    bindings: Required<BindingDeclaration>[];
    exchangeBindings: Required<ExchangeBindingDeclaration>[];
    type?: ExchangeDeclaration['type'];
  } {
    const exchanges: Required<ExchangeDeclaration>[] = [];
    const bindings: Required<BindingDeclaration>[] = [];
    const exchangeBindings: Required<ExchangeBindingDeclaration>[] = [];
    if (!spec.exchange) return { exchanges, bindings, exchangeBindings };
    const exchange = isPredeclaredExchange(spec.exchange.name)
      ? this.predeclared(spec.exchange, by)
      : this.exchange(spec.exchange, by);
    if (!isPredeclaredExchange(exchange.name)) exchanges.push(exchange);
    const keys = exchange.type === 'fanout' || exchange.type === 'headers' ? [''] : spec.bindingKeys;
    if (keys.length === 0)
      throw new TopologyError(`${by}: no binding key for ${exchange.type} exchange "${exchange.name}"`);
    for (const routingKey of keys) {
      bindings.push(this.binding({ exchange: exchange.name, queue, routingKey, arguments: spec.bindingArguments }, by));
    }
    for (const from of spec.sources ?? []) {
      const source = isPredeclaredExchange(from.exchange.name)
        ? this.predeclared(from.exchange, by)
        : this.exchange(from.exchange, by);
      if (!isPredeclaredExchange(source.name) && !exchanges.includes(source)) exchanges.push(source);
      const sourceKeys = source.type === 'fanout' || source.type === 'headers' ? [''] : from.keys;
      if (sourceKeys.length === 0) {
        throw new TopologyError(`${by}: no binding key for ${source.type} exchange "${source.name}" (from)`);
      }
      for (const routingKey of sourceKeys) {
        const binding = { source: source.name, destination: exchange.name, routingKey, arguments: from.arguments };
        exchangeBindings.push(this.exchangeBinding(binding, by));
      }
    }
    return { exchanges, bindings, exchangeBindings, type: exchange.type };
  }

  /** What the failure policies need next to the queue; a declaration two of them share is sent once. */
  private failureTopology(
    policies: readonly FailurePolicy[],
    by: string,
  ): Pick<ConsumerTopology, 'extraExchanges' | 'extraQueues' | 'extraBindings'> {
    const once = <T>(items: T[]): T[] => [...new Set(items)];
    return {
      extraExchanges: once(policies.flatMap((f) => f.exchanges.map((e) => this.exchange(e, by)))),
      extraQueues: once(policies.flatMap((f) => f.queues.map((q) => this.queue(q, by)))),
      extraBindings: once(policies.flatMap((f) => f.bindings.map((b) => this.binding(b, by)))),
    };
  }

  /** Releases a queue's consumer slot, e.g. when a runtime consumer is cancelled. */
  release(queueName: string): void {
    this.consumers.delete(queueName);
  }

  /** Everything declared so far that outlives a single consumer, in declaration order. */
  shared(): {
    exchanges: Required<ExchangeDeclaration>[];
    queues: Required<QueueDeclaration>[];
    bindings: Required<BindingDeclaration>[];
    exchangeBindings: Required<ExchangeBindingDeclaration>[];
  } {
    return {
      exchanges: [...this.exchanges.values()].map((d) => d.decl),
      queues: [...this.queues.values()].map((d) => d.decl),
      bindings: [...this.bindings.values()].map((d) => d.decl),
      exchangeBindings: [...this.exchangeBindings.values()].map((d) => d.decl),
    };
  }

  /** `shared()` with who declared each: the read-only view of the topology (registry/topology-view.ts). */
  declarations(): {
    exchanges: WithDeclarers<Required<ExchangeDeclaration>>[];
    queues: WithDeclarers<Required<QueueDeclaration>>[];
    bindings: WithDeclarers<Required<BindingDeclaration>>[];
    exchangeBindings: WithDeclarers<Required<ExchangeBindingDeclaration>>[];
  } {
    const view = <T>(d: Declared<T>): WithDeclarers<T> => ({ ...d.decl, declaredBy: [...d.declarers] });
    return {
      exchanges: [...this.exchanges.values()].map(view),
      queues: [...this.queues.values()].map(view),
      bindings: [...this.bindings.values()].map(view),
      exchangeBindings: [...this.exchangeBindings.values()].map(view),
    };
  }

  private predeclared(input: ExchangeDeclaration, by: string): Required<ExchangeDeclaration> {
    const type = BUILT_IN_EXCHANGES.get(input.name);
    if (!type) {
      throw new TopologyError(
        `${by}: exchange "${input.name}" uses the prefix "${RESERVED_PREFIX}", which RabbitMQ reserves for its built-in exchanges`,
      );
    }
    if (input.type !== type) {
      throw new TopologyError(
        `${by}: exchange "${input.name}" is RabbitMQ's built-in ${type} exchange, but is declared here as ${input.type}`,
      );
    }
    return normalizeExchange({ ...input, durable: true });
  }
}

function checkedPrefetch(spec: ConsumerSpec, by: string, defaultPrefetch: number): number {
  if (spec.batch) {
    const problem = batchPrefetchProblem(spec.prefetch, spec.batch);
    if (problem) throw new TopologyError(`${by}: ${problem}`);
  }
  const prefetch = spec.batch
    ? batchPrefetch(spec.prefetch, defaultPrefetch, spec.batch)
    : (spec.prefetch ?? defaultPrefetch);
  const problem = prefetchProblem(prefetch);
  if (problem) throw new TopologyError(`${by}: ${problem}`);
  return prefetch;
}

function checkedConcurrency(
  spec: ConsumerSpec,
  by: string,
  defaultConcurrency: number | undefined,
  prefetch: number,
): number {
  // The module's default is checked here too, like its prefetch: the error names a consumer it applies to.
  const own = spec.concurrency ?? defaultConcurrency;
  const problem = own === undefined ? null : concurrencyProblem(own);
  if (problem) throw new TopologyError(`${by}: ${problem}`);
  return effectiveConcurrency(spec.concurrency, defaultConcurrency, prefetch);
}

function checkQueueName(input: QueueDeclaration, by: string): void {
  if (typeof input.name !== 'string') throw new TopologyError(`${by}: queue name must be a string`);
  checkName('queue', input.name, by);
  if (isReservedName(input.name)) {
    throw new TopologyError(
      `${by}: queue name "${input.name}" uses the prefix "${RESERVED_PREFIX}", which RabbitMQ reserves`,
    );
  }
}

function checkName(what: string, name: string, by: string): void {
  if (Buffer.byteLength(name) > MAX_SHORT_STRING_BYTES) {
    throw new TopologyError(
      `${by}: ${what} name "${name.slice(0, 40)}…" is over RabbitMQ's limit of ${MAX_SHORT_STRING_BYTES} bytes`,
    );
  }
}

/** A readable list of the fields on which two declarations disagree, or '' when they agree. */
/**
 * The declaration of `decl.name` everyone agrees on: the first one, once `decl` is checked to say
 * the same; a second declarer that disagrees is a contradiction the broker would refuse.
 */
function agreed<T extends { name: string }>(
  seen: Map<string, Declared<T>>,
  what: 'Exchange' | 'Queue',
  decl: T,
  by: string,
): T {
  const first = seen.get(decl.name);
  if (!first) {
    seen.set(decl.name, { decl, by, declarers: [by] });
    return decl;
  }
  const diff = differences(first.decl, decl);
  if (diff) throw new TopologyError(`${what} "${decl.name}" is declared differently by ${first.by} and ${by}: ${diff}`);
  addDeclarer(first, by);
  return first.decl;
}

function addDeclarer(declared: Declared<unknown>, by: string): void {
  if (!declared.declarers.includes(by)) declared.declarers.push(by);
}

function differences<T extends object>(a: T, b: T): string {
  const out: string[] = [];
  for (const key of Object.keys(a) as (keyof T)[]) {
    const left = stableJson(a[key]);
    const right = stableJson(b[key]);
    if (left !== right) out.push(`${String(key)} ${left} vs ${right}`);
  }
  return out.join(', ');
}

import { isDelayLadderName } from '../topology/delay-ladder.js';
import { stableJson } from '../topology/stable-json.js';
import type { DefinitionBinding, DefinitionExchange, DefinitionQueue, Definitions } from './definitions.js';

/** What the management API lists, as far as the comparison reads it. */
export interface BrokerState {
  exchanges: (DefinitionExchange & { user_who_performed_action?: string })[];
  queues: (DefinitionQueue & { exclusive?: boolean; type?: string })[];
  bindings: (Omit<DefinitionBinding, 'destination_type'> & { destination_type: string })[];
}

export interface TopologyDiff {
  /** Declared by the app, absent on the broker. */
  missing: string[];
  /** On both, with other properties: RabbitMQ would refuse the app's declaration (PRECONDITION_FAILED). */
  different: string[];
  /** On the broker, in the app's vhost, declared by nothing in the app. */
  leftOver: string[];
  /**
   * On the broker, Warren's own: the delay ladder (`warren.delay.*`), which the app's first delayed
   * publish declares, so no declaration lists it. Neither missing nor left over.
   */
  warren: string[];
}

const describeExchange = (e: { name: string }) => `exchange "${e.name}"`;
const describeQueue = (q: { name: string }) => `queue "${q.name}"`;
interface AnyBinding {
  source: string;
  destination: string;
  destination_type: string;
  routing_key: string;
  arguments: object;
}
const describeBinding = (b: AnyBinding) =>
  `binding "${b.source}" → ${b.destination_type === 'exchange' ? 'exchange ' : ''}"${b.destination}" with routing key "${b.routing_key}"` +
  (Object.keys(b.arguments).length > 0 ? ` and arguments ${stableJson(b.arguments)}` : '');
const bindingKey = (b: AnyBinding) =>
  `${b.destination_type}\u0000${b.source}\u0000${b.destination}\u0000${b.routing_key}\u0000${stableJson(b.arguments)}`;

/**
 * Compares what an app declares with what a broker holds. The broker's own exchanges (`amq.*`,
 * the default exchange), server-named queues (`amq.gen-…`, each of a running connection) and the
 * default exchange's implicit bindings are not the app's to declare, so are never left over; the
 * delay ladder's exchanges, queues and bindings are Warren's own, listed as such.
 */
export function diffTopology(app: Definitions, broker: BrokerState): TopologyDiff {
  const missing: string[] = [];
  const different: string[] = [];
  const leftOver: string[] = [];
  const warren: string[] = [];

  const brokerExchanges = new Map(broker.exchanges.map((e) => [e.name, e]));
  for (const e of app.exchanges) {
    const live = brokerExchanges.get(e.name);
    if (!live) missing.push(describeExchange(e));
    else {
      const d = fieldDiff(e, live, ['type', 'durable', 'auto_delete', 'internal', 'arguments']);
      if (d) different.push(`${describeExchange(e)}: ${d}`);
    }
  }
  const appExchanges = new Set(app.exchanges.map((e) => e.name));
  for (const e of broker.exchanges) {
    if (e.name === '' || e.name.startsWith('amq.') || appExchanges.has(e.name)) continue;
    (isDelayLadderName(e.name) ? warren : leftOver).push(describeExchange(e));
  }

  const brokerQueues = new Map(broker.queues.map((q) => [q.name, q]));
  for (const q of app.queues) {
    const live = brokerQueues.get(q.name);
    if (!live) missing.push(describeQueue(q));
    else {
      // A queue declared without a type is classic; RabbitMQ reports the type beside the arguments.
      const { 'x-queue-type': declaredType, ...declared } = q.arguments;
      const { 'x-queue-type': liveArgType, ...liveArgs } = live.arguments ?? {};
      const wanted = { ...q, arguments: declared, type: declaredType ?? 'classic' };
      const got = { ...live, arguments: liveArgs, type: live.type ?? liveArgType ?? 'classic' };
      const d = fieldDiff(wanted, got, ['durable', 'auto_delete', 'type', 'arguments']);
      if (d) different.push(`${describeQueue(q)}: ${d}`);
    }
  }
  const appQueues = new Set(app.queues.map((q) => q.name));
  for (const q of broker.queues) {
    if (q.name.startsWith('amq.') || appQueues.has(q.name)) continue;
    (isDelayLadderName(q.name) ? warren : leftOver).push(describeQueue(q));
  }

  // The default exchange's implicit bindings (source "") are not declared by anyone.
  const declaredBindings = (list: BrokerState['bindings']) =>
    list.filter((b) => (b.destination_type === 'queue' || b.destination_type === 'exchange') && b.source !== '');
  const brokerBindings = new Map(declaredBindings(broker.bindings).map((b) => [bindingKey(b), b]));
  const appBindings = new Set(app.bindings.map(bindingKey));
  for (const b of app.bindings) if (!brokerBindings.has(bindingKey(b))) missing.push(describeBinding(b));
  for (const [key, b] of brokerBindings) {
    if (appBindings.has(key) || b.destination.startsWith('amq.')) continue;
    // The ladder's own, and its deliver exchange's bindings to the app's destinations.
    if (isDelayLadderName(b.source) || isDelayLadderName(b.destination)) {
      warren.push(describeBinding(b));
      continue;
    }
    // Only the bindings that touch the app's exchanges or queues are the app's business.
    const ownDestination =
      b.destination_type === 'exchange' ? appExchanges.has(b.destination) : appQueues.has(b.destination);
    if (!appExchanges.has(b.source) && !ownDestination) continue;
    leftOver.push(describeBinding(b));
  }
  return { missing, different, leftOver, warren };
}

function fieldDiff<T extends object>(wanted: T, live: object, fields: (keyof T & string)[]): string {
  const out: string[] = [];
  for (const field of fields) {
    const a = stableJson(wanted[field] ?? null);
    const b = stableJson((live as Record<string, unknown>)[field] ?? null);
    if (a !== b) out.push(`${field} ${a} here, ${b} on the broker`);
  }
  return out.join(', ');
}

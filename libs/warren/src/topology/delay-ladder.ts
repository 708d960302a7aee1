import { WARREN_DEFAULTS } from '../warren.defaults.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import type { BindingDeclaration, ExchangeDeclaration, QueueDeclaration } from './topology.js';

/**
 * Delayed delivery on a stock RabbitMQ (no delayed-message plugin): a ladder of queues whose
 * per-queue TTL is a power of two of the ladder's unit. Level k is a headers exchange and a queue
 * holding messages for 2^k units. A delayed message carries one header per set bit of its delay
 * (in units); it enters the exchange of its highest bit and each level's exchange either holds it
 * in its queue (its bit is set) or, finding no binding that matches, passes it at once to its
 * alternate exchange: the next level down. When the queue's TTL expires, the message is
 * dead-lettered to the next level down too, so it visits exactly the levels of its set bits. Below
 * level 0 waits the deliver exchange, where a binding per destination (an exchange-to-exchange
 * binding, or a queue binding for a message sent to a queue) matches the header naming it.
 *
 * The routing key is never touched (dead-lettering keeps it), so the destination exchange routes
 * the message by the key it was published with. Each queue holds one TTL only, so its messages
 * expire in arrival order at its head, on time: RabbitMQ expires classic queues' messages at the
 * head, and a head with the longest-waiting message is the first due.
 *
 * Header names start without `x-`: a headers exchange's `all` ignores `x-` headers.
 */

/** Headers a delayed message carries (and keeps: consumers see them). */
export const DELAY_HEADERS = {
  /** The delay the publisher asked for, in milliseconds. */
  delay: 'warren-delay-ms',
  /** The exchange the message is delivered to when its delay is over. */
  exchange: 'warren-delay-exchange',
  /** For a message sent to a queue: the queue it is delivered to when its delay is over. */
  queue: 'warren-delay-queue',
} as const;

/** The header that holds a message at level `k`: present, and true, when bit k of its delay is set. */
export function levelHeader(k: number): string {
  return `warren-delay-level-${k}`;
}

/** Every ladder's exchanges and queues are named under this prefix. */
const PREFIX = 'warren.delay';

/** The shape of one ladder: how long a unit lasts and how many levels it has. */
export interface DelayLadderShape {
  /** One unit of delay, in milliseconds: level k holds a message 2^k · unitMs. */
  unitMs: number;
  /** Levels 0 … levels-1: the longest delay is 2^levels - 1 units. */
  levels: number;
}

/** The module option `delayLadder` over its defaults; a WarrenConfigurationError naming what is wrong with it. */
export function delayLadderShape(option: { unitMs?: unknown; levels?: unknown } | undefined): DelayLadderShape {
  const unitMs = option?.unitMs ?? WARREN_DEFAULTS.delayLadder.unitMs;
  const levels = option?.levels ?? WARREN_DEFAULTS.delayLadder.levels;
  if (typeof unitMs !== 'number' || !Number.isInteger(unitMs) || unitMs < 1) {
    throw new WarrenConfigurationError(
      `WarrenModule options: delayLadder.unitMs must be a whole number of milliseconds, 1 or more (got ${String(unitMs)})`,
    );
  }
  if (typeof levels !== 'number' || !Number.isInteger(levels) || levels < 1 || levels > MAX_DELAY_LEVELS) {
    throw new WarrenConfigurationError(
      `WarrenModule options: delayLadder.levels must be a whole number from 1 to ${MAX_DELAY_LEVELS} (got ${String(levels)})`,
    );
  }
  return { unitMs, levels };
}

/** Where a delayed message is going when its delay is over. */
export type DelayTarget = { exchange: string } | { queue: string };

/** The unit Warren counts delays in; a ladder with another unit (a test's) runs that unit's time per second. */
export const DELAY_SECOND_MS = 1000;

/** The most levels a ladder can have: 2^28 - 1 seconds is over eight years. */
export const MAX_DELAY_LEVELS = 28;

/**
 * The names of a ladder. The default (a second per unit) is `warren.delay.*`; a ladder whose unit
 * is another length is apart (`warren.delay.10ms.*`), since its queues' TTLs differ. Ladders of
 * one unit but different level counts share their queues: a level's declaration does not depend
 * on how many levels there are above it.
 */
export function ladderPrefix(unitMs: number): string {
  return unitMs === DELAY_SECOND_MS ? PREFIX : `${PREFIX}.${unitMs}ms`;
}

export function levelName(unitMs: number, k: number): string {
  return `${ladderPrefix(unitMs)}.level-${k}`;
}

export function deliverExchangeName(unitMs: number): string {
  return `${ladderPrefix(unitMs)}.deliver`;
}

/**
 * Where a message goes whose destination has no binding on the deliver exchange (the destination
 * exchange or queue was deleted since): a queue, so nothing is dropped without a trace.
 */
export function undeliverableName(unitMs: number): string {
  return `${ladderPrefix(unitMs)}.undeliverable`;
}

/** Whether an exchange or queue (a level's queue bears its exchange's name) is a delay ladder's: Warren's own. */
export function isDelayLadderName(name: string): boolean {
  return name.startsWith(`${PREFIX}.`);
}

/** Whether `exchange` belongs to a delay ladder: a delivery through it is a delayed message arriving. */
export function isDelayLadderExchange(exchange: string): boolean {
  return exchange.startsWith(`${PREFIX}.`);
}

/** The exchanges, queues and queue bindings of a ladder, in declaration order. */
export function delayLadderTopology({ unitMs, levels }: DelayLadderShape): {
  exchanges: Required<ExchangeDeclaration>[];
  queues: Required<QueueDeclaration>[];
  bindings: Required<BindingDeclaration>[];
} {
  const deliver = deliverExchangeName(unitMs);
  const undeliverable = undeliverableName(unitMs);
  const exchange = (name: string, type: 'headers' | 'fanout', alternate?: string): Required<ExchangeDeclaration> => ({
    name,
    type,
    durable: true,
    autoDelete: false,
    internal: false,
    arguments: alternate === undefined ? {} : { 'alternate-exchange': alternate },
  });
  const queue = (name: string, args: Record<string, unknown>): Required<QueueDeclaration> => ({
    name,
    durable: true,
    exclusive: false,
    autoDelete: false,
    arguments: args,
  });
  // The bottom first, so that each exchange's alternate exists before anything can reach it.
  const exchanges = [exchange(undeliverable, 'fanout'), exchange(deliver, 'headers', undeliverable)];
  const queues = [queue(undeliverable, {})];
  const bindings: Required<BindingDeclaration>[] = [
    { exchange: undeliverable, queue: undeliverable, routingKey: '', arguments: {} },
  ];
  for (let k = 0; k < levels; k++) {
    const name = levelName(unitMs, k);
    const below = k === 0 ? deliver : levelName(unitMs, k - 1);
    exchanges.push(exchange(name, 'headers', below));
    queues.push(queue(name, { 'x-message-ttl': unitMs * 2 ** k, 'x-dead-letter-exchange': below }));
    bindings.push({
      exchange: name,
      queue: name,
      routingKey: '',
      arguments: { 'x-match': 'all', [levelHeader(k)]: true },
    });
  }
  return { exchanges, queues, bindings };
}

/** The binding of the deliver exchange that hands a delayed message to `target`. */
export function deliveryBinding(
  unitMs: number,
  target: DelayTarget,
): {
  source: string;
  arguments: Record<string, unknown>;
} {
  const source = deliverExchangeName(unitMs);
  return 'exchange' in target
    ? { source, arguments: { 'x-match': 'all', [DELAY_HEADERS.exchange]: target.exchange } }
    : { source, arguments: { 'x-match': 'all', [DELAY_HEADERS.queue]: target.queue } };
}

/** The longest delay a ladder carries, in milliseconds. */
export function maxDelayMs(levels: number): number {
  return (2 ** levels - 1) * DELAY_SECOND_MS;
}

/**
 * How one delayed message enters the ladder: the exchange to publish it to and the headers that
 * route it down. The delay is counted in whole seconds, rounded up, so a message never arrives
 * before its delay is over. A problem (not a number, negative, over the ladder's longest delay)
 * comes back as a sentence for the caller's error.
 */
export function delayRoute(
  delayMs: number,
  target: DelayTarget,
  shape: DelayLadderShape,
): { exchange: string; headers: Record<string, unknown> } | { problem: string } {
  if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
    return { problem: `delay must be a number of milliseconds, 0 or more (got ${String(delayMs)})` };
  }
  const max = maxDelayMs(shape.levels);
  if (delayMs > max) {
    return {
      problem:
        `delay ${delayMs} ms is over the longest the delay ladder carries, ${max} ms ` +
        `(2^${shape.levels} - 1 seconds, delayLadder.levels)`,
    };
  }
  const units = Math.ceil(delayMs / DELAY_SECOND_MS);
  const headers: Record<string, unknown> = { [DELAY_HEADERS.delay]: delayMs };
  if ('exchange' in target) headers[DELAY_HEADERS.exchange] = target.exchange;
  else headers[DELAY_HEADERS.queue] = target.queue;
  let top = -1;
  for (let k = 0; k < shape.levels; k++) {
    if (Math.floor(units / 2 ** k) % 2 === 1) {
      headers[levelHeader(k)] = true;
      top = k;
    }
  }
  // Only a delay of 0 has no bit set (delayRoute is not asked for it): it goes straight to delivery.
  return { exchange: top < 0 ? deliverExchangeName(shape.unitMs) : levelName(shape.unitMs, top), headers };
}

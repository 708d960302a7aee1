import { TopologyError } from '../warren.errors.js';
import type { ExchangeType } from './amqp-rules.js';
import { overlapExample } from './binding-overlap.js';
import type { FailurePolicy } from './failure-policy.js';
import { stableJson } from './stable-json.js';
import type { BindingDeclaration, ConsumerTopology, QueueDeclaration } from './topology.js';

/** One method of a service queue: its bindings (on one exchange), its failure policy, whether it is the fallback. */
export interface ServiceMember {
  by: string;
  failure: FailurePolicy;
  fallback: boolean;
  /** The type of the exchange of `bindings` (none for a member without an exchange). */
  type?: ExchangeType;
  bindings: Required<BindingDeclaration>[];
}

/** A service queue's topology: the union of its members' declarations, and each member's own part. */
export interface ServiceTopology extends ConsumerTopology {
  /** The queue's own policy (mode and dead-letter target, which its members share): for what no member takes. */
  failure: FailurePolicy;
  members: ServiceMember[];
}

interface MemberSettings {
  by: string;
  queue: Required<QueueDeclaration>;
  failure: FailurePolicy;
  prefetch: number;
  concurrency: number;
}

/**
 * The methods of one service queue share one queue and one consumer, so what belongs to the queue
 * must agree: its declaration (durability, type, arguments), its prefetch and concurrency, the failure mode (one
 * consumer acks, retries or leaves settling to its handlers one way) and the dead-letter target
 * (the queue's own, which its `deliveryLimit` and the unmatched messages use). What belongs to a
 * method — retry delays, requeue pause, schema — stays the method's.
 */
export function checkServiceAgreement(queue: string, members: readonly MemberSettings[]): void {
  const [first, ...rest] = members;
  const settings = (m: MemberSettings): Record<string, string> => ({
    durable: stableJson(m.queue.durable),
    exclusive: stableJson(m.queue.exclusive),
    autoDelete: stableJson(m.queue.autoDelete),
    arguments: stableJson(m.queue.arguments),
    prefetch: stableJson(m.prefetch),
    concurrency: stableJson(m.concurrency),
    'failure mode': stableJson(m.failure.mode),
    'dead-letter target': stableJson(m.failure.deadLetter ?? null),
  });
  const mine = settings(first);
  for (const other of rest) {
    const theirs = settings(other);
    const diff = Object.keys(mine)
      .filter((k) => mine[k] !== theirs[k])
      .map((k) => `${k} ${mine[k]} vs ${theirs[k]}`);
    if (diff.length > 0) {
      throw new TopologyError(
        `Service queue "${queue}": ${first.by} and ${other.by} consume it with different settings: ${diff.join(', ')}. ` +
          `The handlers of one queue share its declaration, prefetch, concurrency, failure mode and dead-letter queue`,
      );
    }
  }
}

/**
 * Exactly one handler per message: two members' bindings on one exchange that can both match a
 * message fail the boot, naming both methods and an example, unless one member is the fallback
 * (which only gets what no other matches). At most one fallback per queue.
 */
export function checkServiceOverlaps(queue: string, members: readonly ServiceMember[]): void {
  const fallbacks = members.filter((m) => m.fallback);
  if (new Set(fallbacks.map((m) => m.by)).size > 1) {
    throw new TopologyError(
      `Service queue "${queue}": ${fallbacks.map((m) => m.by).join(' and ')} are both declared { fallback: true }; ` +
        `a queue has at most one fallback handler`,
    );
  }
  for (let i = 0; i < members.length; i++) {
    for (let j = i + 1; j < members.length; j++) {
      const a = members[i];
      const b = members[j];
      // One method under two decorators is one handler; the fallback may overlap anyone.
      if (a.by === b.by || a.fallback || b.fallback) continue;
      for (const x of a.bindings) {
        for (const y of b.bindings) {
          if (x.exchange !== y.exchange || !a.type) continue;
          const example = overlapExample(a.type, x, y);
          if (example === null) continue;
          throw new TopologyError(
            `Service queue "${queue}": ${a.by} (${describe(a.type, x)}) and ${b.by} (${describe(a.type, y)}) ` +
              `both match ${example} on exchange "${x.exchange}"; a message must have exactly one handler: ` +
              `narrow the bindings, or declare one of them { fallback: true }`,
          );
        }
      }
    }
  }
}

function describe(type: ExchangeType, binding: Required<BindingDeclaration>): string {
  if (type === 'headers') return `headers ${stableJson(binding.arguments)}`;
  if (type === 'fanout') return 'fanout binding';
  return `binding key ${JSON.stringify(binding.routingKey)}`;
}

import type { ConnectionTopology } from '../registry/topology-view.js';

/** RabbitMQ's definitions format, as `rabbitmqctl export_definitions` writes it. */
export interface Definitions {
  vhosts: { name: string }[];
  exchanges: DefinitionExchange[];
  queues: DefinitionQueue[];
  bindings: DefinitionBinding[];
}

export interface DefinitionExchange {
  name: string;
  vhost: string;
  type: string;
  durable: boolean;
  auto_delete: boolean;
  internal: boolean;
  arguments: Record<string, unknown>;
}

export interface DefinitionQueue {
  name: string;
  vhost: string;
  durable: boolean;
  auto_delete: boolean;
  arguments: Record<string, unknown>;
}

export interface DefinitionBinding {
  source: string;
  vhost: string;
  destination: string;
  destination_type: 'queue' | 'exchange';
  routing_key: string;
  arguments: Record<string, unknown>;
}

/**
 * A connection's topology as definitions for `rabbitmqctl import_definitions` (or the management
 * API's POST /api/definitions). Server-named queues are the one thing definitions cannot hold
 * (their name is RabbitMQ's, new at each connection): they and their bindings are returned
 * apart, for the caller to say so.
 */
export function toDefinitions(
  topology: ConnectionTopology,
  vhost: string,
): { definitions: Definitions; skipped: string[] } {
  const skipped = [
    ...topology.handlers
      .filter((h) => h.queue.name === '')
      .map((h) => `the server-named queue of ${h.label} and its ${h.bindings.length} binding(s)`),
    ...topology.queues.filter((q) => q.exclusive).map((q) => `the exclusive queue "${q.name}" and its bindings`),
  ];
  const exclusive = new Set(topology.queues.filter((q) => q.exclusive).map((q) => q.name));
  return {
    definitions: {
      vhosts: [{ name: vhost }],
      exchanges: topology.exchanges.map((e) => ({
        name: e.name,
        vhost,
        type: e.type,
        durable: e.durable,
        auto_delete: e.autoDelete,
        internal: e.internal,
        arguments: e.arguments,
      })),
      queues: topology.queues
        .filter((q) => !q.exclusive)
        .map((q) => ({ name: q.name, vhost, durable: q.durable, auto_delete: q.autoDelete, arguments: q.arguments })),
      bindings: topology.bindings
        .filter((b) => !exclusive.has(b.queue))
        .map<DefinitionBinding>((b) => ({
          source: b.exchange,
          vhost,
          destination: b.queue,
          destination_type: 'queue' as const,
          routing_key: b.routingKey,
          arguments: b.arguments,
        }))
        .concat(
          (topology.exchangeBindings ?? []).map<DefinitionBinding>((b) => ({
            source: b.source,
            vhost,
            destination: b.destination,
            destination_type: 'exchange' as const,
            routing_key: b.routingKey,
            arguments: b.arguments,
          })),
        ),
    },
    skipped,
  };
}

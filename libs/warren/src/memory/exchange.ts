import type { ExchangeType } from '../topology/amqp-rules.js';
import { topicMatches } from '../topology/binding-key.js';
import { headersMatch } from '../topology/headers-match.js';
import { stableJson } from '../topology/stable-json.js';
import { wireTable } from './amqp-wire.js';

export interface ExchangeSettings {
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: Record<string, unknown>;
}

/** What a binding routes to: a queue, or another exchange (RabbitMQ's exchange-to-exchange binding). */
export type DestinationType = 'queue' | 'exchange';

export interface MemoryBinding {
  readonly destination: string;
  readonly destinationType: DestinationType;
  readonly routingKey: string;
  readonly arguments: Record<string, unknown>;
}

/** Where one exchange's bindings send a message. */
export interface Routed {
  queues: Set<string>;
  exchanges: Set<string>;
}

/** An exchange and its bindings to queues and exchanges; `route` is its type's routing algorithm. */
export class MemoryExchange {
  private readonly bindings = new Map<string, MemoryBinding>();
  private hadBinding = false;

  constructor(
    readonly name: string,
    readonly type: ExchangeType,
    readonly settings: ExchangeSettings,
  ) {}

  /** Adds a binding; binding twice is a no-op, as in RabbitMQ (the arguments are part of its identity). */
  bind(
    destination: string,
    routingKey: string,
    args: object | undefined,
    destinationType: DestinationType = 'queue',
  ): void {
    const binding = { destination, destinationType, routingKey, arguments: wireTable(args) };
    this.bindings.set(bindingId(binding), binding);
    this.hadBinding = true;
  }

  /** Removes a binding; true when the exchange is auto-delete and has just lost its last one. */
  unbind(
    destination: string,
    routingKey: string,
    args: object | undefined,
    destinationType: DestinationType = 'queue',
  ): boolean {
    this.bindings.delete(bindingId({ destination, destinationType, routingKey, arguments: wireTable(args) }));
    return this.isUnused();
  }

  /** Removes every binding to `destination` (deleted); true when the exchange should auto-delete. */
  unbindDestination(destination: string, destinationType: DestinationType = 'queue'): boolean {
    for (const [id, b] of this.bindings) {
      if (b.destination === destination && b.destinationType === destinationType) this.bindings.delete(id);
    }
    return this.isUnused();
  }

  get bindingCount(): number {
    return this.bindings.size;
  }

  list(): MemoryBinding[] {
    return [...this.bindings.values()];
  }

  /** The queues and exchanges a message with `routingKey` and `headers` goes to, each once. */
  route(routingKey: string, headers: Record<string, unknown>, into: Routed): void {
    for (const b of this.bindings.values()) {
      const seen = b.destinationType === 'queue' ? into.queues : into.exchanges;
      if (!seen.has(b.destination) && this.matches(b, routingKey, headers)) seen.add(b.destination);
    }
  }

  private isUnused(): boolean {
    return this.settings.autoDelete && this.hadBinding && this.bindings.size === 0;
  }

  private matches(binding: MemoryBinding, routingKey: string, headers: Record<string, unknown>): boolean {
    switch (this.type) {
      case 'direct':
        return binding.routingKey === routingKey;
      case 'fanout':
        return true;
      case 'topic':
        return topicMatches(binding.routingKey, routingKey);
      case 'headers':
        return headersMatch(binding.arguments, headers);
    }
  }
}

function bindingId(b: MemoryBinding): string {
  return `${JSON.stringify([b.destinationType, b.destination, b.routingKey])}${stableJson(b.arguments)}`;
}

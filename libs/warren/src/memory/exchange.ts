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

export interface MemoryBinding {
  readonly queue: string;
  readonly routingKey: string;
  readonly arguments: Record<string, unknown>;
}

/** An exchange and its bindings to queues; `route` is its type's routing algorithm. */
export class MemoryExchange {
  private readonly bindings = new Map<string, MemoryBinding>();
  private hadBinding = false;

  constructor(
    readonly name: string,
    readonly type: ExchangeType,
    readonly settings: ExchangeSettings,
  ) {}

  /** Adds a binding; binding twice is a no-op, as in RabbitMQ (the arguments are part of its identity). */
  bind(queue: string, routingKey: string, args: object | undefined): void {
    const binding = { queue, routingKey, arguments: wireTable(args) };
    this.bindings.set(bindingId(binding), binding);
    this.hadBinding = true;
  }

  /** Removes a binding; true when the exchange is auto-delete and has just lost its last one. */
  unbind(queue: string, routingKey: string, args: object | undefined): boolean {
    this.bindings.delete(bindingId({ queue, routingKey, arguments: wireTable(args) }));
    return this.isUnused();
  }

  /** Removes every binding of `queue` (deleted); true when the exchange should auto-delete. */
  unbindQueue(queue: string): boolean {
    for (const [id, b] of this.bindings) if (b.queue === queue) this.bindings.delete(id);
    return this.isUnused();
  }

  get bindingCount(): number {
    return this.bindings.size;
  }

  list(): MemoryBinding[] {
    return [...this.bindings.values()];
  }

  /** The queues a message with `routingKey` and `headers` goes to, each once. */
  route(routingKey: string, headers: Record<string, unknown>): Set<string> {
    const queues = new Set<string>();
    for (const b of this.bindings.values()) {
      if (!queues.has(b.queue) && this.matches(b, routingKey, headers)) queues.add(b.queue);
    }
    return queues;
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
  return `${JSON.stringify([b.queue, b.routingKey])}${stableJson(b.arguments)}`;
}

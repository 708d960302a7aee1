import type { Channel } from 'amqplib';
import type {
  BindingDeclaration,
  ConsumerTopology,
  ExchangeBindingDeclaration,
  ExchangeDeclaration,
  QueueDeclaration,
} from './topology.js';

/**
 * Sends declarations on one channel. Calls are issued without awaiting each one: amqplib queues
 * them on the channel in order, so the channel never idles between round trips.
 */
export async function declareShared(
  channel: Channel,
  topology: {
    exchanges: Required<ExchangeDeclaration>[];
    queues: Required<QueueDeclaration>[];
    bindings: Required<BindingDeclaration>[];
    exchangeBindings?: Required<ExchangeBindingDeclaration>[];
  },
): Promise<void> {
  const pending: Promise<unknown>[] = [];
  for (const e of topology.exchanges) pending.push(assertExchange(channel, e));
  for (const b of topology.exchangeBindings ?? []) pending.push(bindExchange(channel, b));
  for (const q of topology.queues) if (!q.exclusive) pending.push(assertQueue(channel, q));
  for (const b of topology.bindings) {
    const queue = topology.queues.find((q) => q.name === b.queue);
    if (!queue?.exclusive) pending.push(channel.bindQueue(b.queue, b.exchange, b.routingKey, b.arguments));
  }
  await Promise.all(pending);
}

/** Declares a consumer's exchanges, queue and bindings; returns the queue's live name. */
export async function declareConsumerTopology(channel: Channel, topology: ConsumerTopology): Promise<string> {
  const pending: Promise<unknown>[] = [...topology.exchanges, ...topology.extraExchanges].map((e) =>
    assertExchange(channel, e),
  );
  for (const b of topology.exchangeBindings ?? []) pending.push(bindExchange(channel, b));
  for (const q of topology.extraQueues) pending.push(assertQueue(channel, q));
  // amqplib sends a channel's methods in call order: these follow their exchanges and queues.
  for (const b of topology.extraBindings)
    pending.push(channel.bindQueue(b.queue, b.exchange, b.routingKey, b.arguments));
  const queue = assertQueue(channel, topology.queue);
  const bind = (name: string) =>
    Promise.all(topology.bindings.map((b) => channel.bindQueue(name, b.exchange, b.routingKey, b.arguments)));
  // A server-named queue is bound once its name comes back; a named one without waiting.
  const bound = topology.queue.name ? bind(topology.queue.name) : queue.then(({ queue: name }) => bind(name));
  // All awaited together: when the channel dies, every one of them rejects, and none may go unhandled.
  await Promise.all([...pending, queue, bound]);
  return (await queue).queue;
}

function assertExchange(channel: Channel, e: Required<ExchangeDeclaration>) {
  return channel.assertExchange(e.name, e.type, {
    durable: e.durable,
    autoDelete: e.autoDelete,
    internal: e.internal,
    arguments: e.arguments,
  });
}

function bindExchange(channel: Channel, b: Required<ExchangeBindingDeclaration>) {
  return channel.bindExchange(b.destination, b.source, b.routingKey, b.arguments);
}

function assertQueue(channel: Channel, q: Required<QueueDeclaration>) {
  return channel.assertQueue(q.name, {
    durable: q.durable,
    exclusive: q.exclusive,
    autoDelete: q.autoDelete,
    arguments: q.arguments,
  });
}

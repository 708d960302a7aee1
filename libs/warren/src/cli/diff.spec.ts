import { toDefinitions } from './definitions.js';
import { diffTopology } from './diff.js';
import type { ConnectionTopology } from '../registry/topology-view.js';

const topology: ConnectionTopology = {
  connection: 'default',
  exchanges: [
    {
      name: 'orders',
      type: 'topic',
      durable: true,
      autoDelete: false,
      internal: false,
      arguments: {},
      declaredBy: ['A.on'],
    },
  ],
  queues: [
    {
      name: 'orders.a',
      durable: true,
      exclusive: false,
      autoDelete: false,
      arguments: { 'x-queue-type': 'quorum' },
      declaredBy: ['A.on'],
    },
    { name: 'mine', durable: false, exclusive: true, autoDelete: true, arguments: {}, declaredBy: ['B.on'] },
  ],
  bindings: [
    { exchange: 'orders', queue: 'orders.a', routingKey: 'order.*', arguments: {}, declaredBy: ['A.on'] },
    { exchange: 'orders', queue: 'mine', routingKey: 'x', arguments: {}, declaredBy: ['B.on'] },
  ],
  exchangeBindings: [],
  handlers: [
    {
      label: 'C.on',
      kind: 'subscribe',
      queue: { name: '', durable: false, exclusive: true, autoDelete: true, arguments: {} },
      bindings: [{ exchange: 'orders', queue: '', routingKey: '#', arguments: {} }],
      prefetch: 1,
      failure: { mode: 'drop', retryDelays: [] },
    },
  ],
};

describe('RabbitMQ definitions of a topology', () => {
  it('hold exchanges, queues and bindings, but no exclusive or server-named queue, saying which were left out', () => {
    const { definitions, skipped } = toDefinitions(topology, 'shop');
    expect(definitions).toEqual({
      vhosts: [{ name: 'shop' }],
      exchanges: [
        {
          name: 'orders',
          vhost: 'shop',
          type: 'topic',
          durable: true,
          auto_delete: false,
          internal: false,
          arguments: {},
        },
      ],
      queues: [
        { name: 'orders.a', vhost: 'shop', durable: true, auto_delete: false, arguments: { 'x-queue-type': 'quorum' } },
      ],
      bindings: [
        {
          source: 'orders',
          vhost: 'shop',
          destination: 'orders.a',
          destination_type: 'queue',
          routing_key: 'order.*',
          arguments: {},
        },
      ],
    });
    expect(skipped).toEqual([
      'the server-named queue of C.on and its 1 binding(s)',
      'the exclusive queue "mine" and its bindings',
    ]);
  });
});

describe('diffTopology', () => {
  const { definitions } = toDefinitions(topology, '/');

  it('finds nothing when the broker holds what the app declares, its own exchanges and live server-named queues aside', () => {
    const diff = diffTopology(definitions, {
      exchanges: [
        { name: '', vhost: '/', type: 'direct', durable: true, auto_delete: false, internal: false, arguments: {} },
        {
          name: 'amq.topic',
          vhost: '/',
          type: 'topic',
          durable: true,
          auto_delete: false,
          internal: false,
          arguments: {},
        },
        { ...definitions.exchanges[0] },
      ],
      // RabbitMQ reports the queue type beside the arguments too.
      queues: [
        { ...definitions.queues[0], type: 'quorum' },
        { name: 'amq.gen-1', vhost: '/', durable: false, auto_delete: true, arguments: {} },
      ],
      bindings: [
        {
          source: '',
          vhost: '/',
          destination: 'orders.a',
          destination_type: 'queue',
          routing_key: 'orders.a',
          arguments: {},
        },
        { ...definitions.bindings[0] },
        {
          source: 'orders',
          vhost: '/',
          destination: 'amq.gen-1',
          destination_type: 'queue',
          routing_key: '#',
          arguments: {},
        },
      ],
    });
    expect(diff).toEqual({ missing: [], different: [], leftOver: [], warren: [] });
  });

  it('names what is missing, what differs and what is left over', () => {
    const diff = diffTopology(definitions, {
      exchanges: [
        { ...definitions.exchanges[0], type: 'direct' },
        { ...definitions.exchanges[0], name: 'old' },
      ],
      queues: [
        { ...definitions.queues[0], arguments: {}, type: 'classic' },
        { name: 'stale', vhost: '/', durable: true, auto_delete: false, arguments: {} },
      ],
      bindings: [
        {
          source: 'orders',
          vhost: '/',
          destination: 'stale',
          destination_type: 'queue',
          routing_key: 'k',
          arguments: {},
        },
        {
          source: 'other',
          vhost: '/',
          destination: 'elsewhere',
          destination_type: 'queue',
          routing_key: 'k',
          arguments: {},
        },
      ],
    });
    expect(diff).toEqual({
      missing: ['binding "orders" → "orders.a" with routing key "order.*"'],
      different: [
        'exchange "orders": type "topic" here, "direct" on the broker',
        'queue "orders.a": type "quorum" here, "classic" on the broker',
      ],
      leftOver: ['exchange "old"', 'queue "stale"', 'binding "orders" → "stale" with routing key "k"'],
      warren: [],
    });
  });

  it('hold exchange-to-exchange bindings, and compare them with the broker apart from queue bindings', () => {
    const audit = {
      name: 'audit',
      type: 'fanout' as const,
      durable: true,
      autoDelete: false,
      internal: true,
      arguments: {},
      declaredBy: ['options'],
    };
    const withE2e: ConnectionTopology = {
      ...topology,
      exchanges: [...topology.exchanges, audit],
      exchangeBindings: [
        { source: 'orders', destination: 'audit', routingKey: 'order.#', arguments: {}, declaredBy: ['options'] },
      ],
    };
    const { definitions } = toDefinitions(withE2e, '/');
    const e2e = {
      source: 'orders',
      vhost: '/',
      destination: 'audit',
      destination_type: 'exchange' as const,
      routing_key: 'order.#',
      arguments: {},
    };
    expect(definitions.bindings).toContainEqual(e2e);
    const broker = { exchanges: definitions.exchanges, queues: definitions.queues };
    expect(diffTopology(definitions, { ...broker, bindings: definitions.bindings })).toEqual({
      missing: [],
      different: [],
      leftOver: [],
      warren: [],
    });
    const queueBindings = definitions.bindings.filter((b) => b.destination_type === 'queue');
    // The same names as a queue binding are another binding: it does not stand in for the exchange one.
    const asQueue = { ...e2e, destination_type: 'queue' };
    const stale = { ...e2e, routing_key: 'order.old' };
    expect(diffTopology(definitions, { ...broker, bindings: [...queueBindings, asQueue, stale] })).toEqual({
      missing: ['binding "orders" → exchange "audit" with routing key "order.#"'],
      different: [],
      leftOver: [
        'binding "orders" → "audit" with routing key "order.#"',
        'binding "orders" → exchange "audit" with routing key "order.old"',
      ],
      warren: [],
    });
  });

  it("lists the delay ladder (warren.delay.*, declared by the first delayed publish) as Warren's own, not left over", () => {
    const ladder = (name: string, type: string) => ({
      name,
      vhost: '/',
      type,
      durable: true,
      auto_delete: false,
      internal: false,
      arguments: {},
    });
    const binding = (source: string, destination: string, destination_type: string) => ({
      source,
      vhost: '/',
      destination,
      destination_type,
      routing_key: '',
      arguments: {},
    });
    const diff = diffTopology(definitions, {
      exchanges: [
        ...definitions.exchanges,
        ladder('warren.delay.deliver', 'headers'),
        ladder('warren.delay.level-0', 'headers'),
        ladder('warren.delayed', 'topic'),
      ],
      queues: [
        ...definitions.queues,
        { name: 'warren.delay.level-0', vhost: '/', durable: true, auto_delete: false, arguments: {} },
      ],
      bindings: [
        ...definitions.bindings,
        binding('warren.delay.level-0', 'warren.delay.level-0', 'queue'),
        // The deliver exchange's binding to a destination of the app's.
        binding('warren.delay.deliver', 'orders', 'exchange'),
      ],
    });
    expect(diff).toEqual({
      missing: [],
      different: [],
      // Only the prefix and its dot make a ladder's name.
      leftOver: ['exchange "warren.delayed"'],
      warren: [
        'exchange "warren.delay.deliver"',
        'exchange "warren.delay.level-0"',
        'queue "warren.delay.level-0"',
        'binding "warren.delay.level-0" → "warren.delay.level-0" with routing key ""',
        'binding "warren.delay.deliver" → exchange "orders" with routing key ""',
      ],
    });
  });
});

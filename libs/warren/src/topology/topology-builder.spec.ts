import { TopologyError } from '../warren.errors.js';
import { type ConsumerSpec, TopologyBuilder } from './topology-builder.js';

const topic = (name: string) => ({ name, type: 'topic' as const });

describe('TopologyBuilder', () => {
  it('merges identical declarations from several handlers', () => {
    const builder = new TopologyBuilder();
    builder.consumer({ exchange: topic('logs'), bindingKeys: ['a.*'], queue: { name: '' } }, 'A.one', 10);
    builder.consumer({ exchange: topic('logs'), bindingKeys: ['b.*'], queue: { name: '' } }, 'B.two', 10);
    expect(builder.shared().exchanges).toEqual([
      { name: 'logs', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: {} },
    ]);
  });

  it('names both methods when one exchange is declared with two types', () => {
    const builder = new TopologyBuilder();
    builder.consumer(
      { exchange: topic('logs'), bindingKeys: ['a'], queue: { name: '' } },
      'OrdersService.onPlaced',
      10,
    );
    expect(() =>
      builder.consumer(
        { exchange: { name: 'logs', type: 'fanout' }, bindingKeys: [], queue: { name: '' } },
        'AuditService.onAll',
        10,
      ),
    ).toThrow(
      new TopologyError(
        'Exchange "logs" is declared differently by OrdersService.onPlaced and AuditService.onAll: type "topic" vs "fanout"',
      ),
    );
  });

  it('names both methods when one queue is declared with different durability or arguments', () => {
    const builder = new TopologyBuilder();
    builder.queue({ name: 'tasks', durable: true, arguments: { 'x-message-ttl': 1000 } }, 'Worker.onTask');
    expect(() =>
      builder.queue({ name: 'tasks', durable: false, arguments: { 'x-message-ttl': 1000 } }, 'Other.onTask'),
    ).toThrow('Queue "tasks" is declared differently by Worker.onTask and Other.onTask: durable true vs false');
    expect(() => builder.queue({ name: 'tasks', arguments: { 'x-message-ttl': 5 } }, 'Third.onTask')).toThrow(
      'Queue "tasks" is declared differently by Worker.onTask and Third.onTask: arguments {"x-message-ttl":1000} vs {"x-message-ttl":5}',
    );
  });

  it('refuses one named queue consumed by two methods', () => {
    const builder = new TopologyBuilder();
    builder.consumer({ bindingKeys: [], queue: { name: 'tasks' } }, 'A.work', 1);
    expect(() => builder.consumer({ bindingKeys: [], queue: { name: 'tasks' } }, 'B.work', 1)).toThrow(
      /Queue "tasks" is consumed by both A\.work and B\.work/,
    );
  });

  it('refuses invalid binding patterns, naming the method', () => {
    const builder = new TopologyBuilder();
    expect(() =>
      builder.consumer({ exchange: topic('logs'), bindingKeys: ['kern.crit*'], queue: { name: '' } }, 'Logs.on', 1),
    ).toThrow(
      'Logs.on: invalid binding key "kern.crit*" on topic exchange "logs": "crit*" mixes a wildcard with other characters; "*" and "#" must be whole words between dots',
    );
    expect(() =>
      builder.consumer(
        { exchange: topic('logs'), bindingKeys: ['x'.repeat(256)], queue: { name: '' } },
        'Logs.long',
        1,
      ),
    ).toThrow(/Logs\.long: invalid binding key "x+" on topic exchange "logs": binding key is 256 bytes/);
  });

  it('refuses the reserved names and the default exchange', () => {
    const builder = new TopologyBuilder();
    expect(() => builder.exchange({ name: '', type: 'direct' }, 'A.b')).toThrow(/default exchange/);
    expect(() => builder.queue({ name: 'amq.mine' }, 'A.b')).toThrow(/prefix "amq\."/);
    expect(() =>
      builder.consumer(
        { exchange: { name: 'amq.topic', type: 'fanout' }, bindingKeys: [], queue: { name: '' } },
        'A.b',
        1,
      ),
    ).toThrow('A.b: exchange "amq.topic" is RabbitMQ\'s built-in topic exchange, but is declared here as fanout');
  });

  it('binds to built-in exchanges without declaring them', () => {
    const builder = new TopologyBuilder();
    const plan = builder.consumer(
      { exchange: topic('amq.topic'), bindingKeys: ['a.#'], queue: { name: '' } },
      'A.b',
      1,
    );
    expect(plan.exchanges).toEqual([]);
    expect(plan.bindings.map((b) => [b.exchange, b.routingKey])).toEqual([['amq.topic', 'a.#']]);
  });

  it('leaves a queue free again when a consumer is released', () => {
    const builder = new TopologyBuilder();
    builder.consumer({ bindingKeys: [], queue: { name: 'q' } }, 'A.a', 1);
    builder.release('q');
    expect(() => builder.consumer({ bindingKeys: [], queue: { name: 'q' } }, 'B.b', 1)).not.toThrow();
  });

  describe("a quorum queue's delivery limit", () => {
    const quorum = (failure: ConsumerSpec['failure']): ConsumerSpec => ({
      bindingKeys: [],
      queue: { name: 'jobs' },
      queueType: 'quorum',
      deliveryLimit: 3,
      failure,
    });

    it("points the broker's dead-lettering at the dead-letter queue Warren declares", () => {
      const plan = new TopologyBuilder().consumer(quorum('requeue'), 'Jobs.run', 1);
      expect(plan.queue.arguments).toEqual({
        'x-queue-type': 'quorum',
        'x-delivery-limit': 3,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'jobs.dlq',
      });
      expect(plan.extraQueues.map((q) => q.name)).toEqual(['jobs.dlq']);
    });

    it("uses the handler's own deadLetterQueue, or the module's", () => {
      const own = new TopologyBuilder().consumer(
        quorum({ mode: 'requeue', deadLetterQueue: 'jobs.failed' }),
        'Jobs.run',
        1,
      );
      expect(own.queue.arguments['x-dead-letter-routing-key']).toBe('jobs.failed');
      expect(own.extraQueues.map((q) => q.name)).toEqual(['jobs.failed']);
      const module = new TopologyBuilder().consumer(quorum('requeue'), 'Jobs.run', 1, {
        deadLetterQueue: 'all.failed',
      });
      expect(module.queue.arguments['x-dead-letter-routing-key']).toBe('all.failed');
      expect(module.extraQueues.map((q) => q.name)).toEqual(['all.failed']);
    });

    it("sends to a deadLetterExchange with the queue's name as routing key, declaring no queue", () => {
      const plan = new TopologyBuilder().consumer(
        quorum({ mode: 'requeue', deadLetterExchange: 'graveyard' }),
        'Jobs.run',
        1,
      );
      expect(plan.queue.arguments).toMatchObject({
        'x-dead-letter-exchange': 'graveyard',
        'x-dead-letter-routing-key': 'jobs',
      });
      expect(plan.failure.deadLetter).toEqual({ exchange: 'graveyard', routingKey: 'jobs' });
      expect(plan.extraQueues).toEqual([]);
    });

    it('keeps dead-letter arguments the handler wrote itself', () => {
      const spec = quorum('requeue');
      spec.queue.arguments = { 'x-dead-letter-exchange': 'mine' };
      const plan = new TopologyBuilder().consumer(spec, 'Jobs.run', 1);
      expect(plan.queue.arguments).toMatchObject({
        'x-dead-letter-exchange': 'mine',
        'x-dead-letter-routing-key': 'jobs.dlq',
      });
    });

    it('adds no dead-letter arguments without a delivery limit', () => {
      const plan = new TopologyBuilder().consumer(
        { bindingKeys: [], queue: { name: 'jobs' }, queueType: 'quorum' },
        'Jobs.run',
        1,
      );
      expect(plan.queue.arguments).toEqual({ 'x-queue-type': 'quorum' });
    });
  });

  describe('typed queue options', () => {
    const build = (spec: Partial<ConsumerSpec>, defaultType?: 'quorum') =>
      new TopologyBuilder().consumer(
        { bindingKeys: [], queue: { name: 'q' }, ...spec },
        'A.b',
        1,
        { mode: 'drop' },
        defaultType,
      );

    it('become the queue arguments RabbitMQ knows them by', () => {
      expect(
        build({
          singleActiveConsumer: true,
          maxLength: 10,
          overflow: 'reject-publish',
          messageTtl: 60_000,
          maxPriority: 5,
        }).queue.arguments,
      ).toEqual({
        'x-single-active-consumer': true,
        'x-max-length': 10,
        'x-overflow': 'reject-publish',
        'x-message-ttl': 60_000,
        'x-max-priority': 5,
      });
      expect(
        build({ queueType: 'stream', maxAge: '7D', maxSegmentSize: 50_000_000, maxLengthBytes: 10_000_000_000 }).queue
          .arguments,
      ).toEqual({
        'x-queue-type': 'stream',
        'x-max-age': '7D',
        'x-stream-max-segment-size-bytes': 50_000_000,
        'x-max-length-bytes': 10_000_000_000,
      });
    });

    it("give named durable queues the module's default type, and its options their checks against it", () => {
      expect(build({ deliveryLimit: 3 }, 'quorum').queue.arguments).toMatchObject({
        'x-queue-type': 'quorum',
        'x-delivery-limit': 3,
      });
      expect(() => build({ maxPriority: 3 }, 'quorum')).toThrow(
        new TopologyError('A.b: maxPriority needs queueType "classic"'),
      );
      // The handler's own type, and temporary queues, are left as they are.
      expect(build({ queueType: 'classic' }, 'quorum').queue.arguments).toEqual({ 'x-queue-type': 'classic' });
      expect(build({ queue: { name: 'q', durable: false } }, 'quorum').queue.arguments).toEqual({});
      expect(build({ queue: { name: '' } }, 'quorum').queue.arguments).toEqual({});
    });

    it("give a quorum queue's dead-letter and retry queues the quorum type, the retry ones under names of their own", () => {
      const failures = (spec: Partial<ConsumerSpec>, defaultType?: 'quorum') => {
        const plan = new TopologyBuilder().consumer(
          { bindingKeys: [], queue: { name: 'jobs' }, ...spec },
          'Jobs.run',
          1,
          { mode: 'retry', retryDelays: [1000] },
          defaultType,
        );
        return {
          queues: plan.extraQueues.map((q) => [q.name, q.arguments['x-queue-type']]),
          retryQueueType: plan.failure.retryQueueType,
        };
      };
      const quorum = {
        queues: [
          ['jobs.dlq', 'quorum'],
          ['warren.retry-1000ms.quorum', 'quorum'],
        ],
        retryQueueType: 'quorum',
      };
      // By the module's default, or by the handler's own type: a classic one lives on one node.
      expect(failures({}, 'quorum')).toEqual(quorum);
      expect(failures({ queueType: 'quorum' })).toEqual(quorum);
      // A classic queue keeps the classic shared retry queues, whatever the module's default.
      expect(failures({ queueType: 'classic' }, 'quorum')).toEqual({
        queues: [
          ['jobs.dlq', 'quorum'],
          ['warren.retry-1000ms', undefined],
        ],
        retryQueueType: undefined,
      });
      expect(failures({})).toEqual({
        queues: [
          ['jobs.dlq', undefined],
          ['warren.retry-1000ms', undefined],
        ],
        retryQueueType: undefined,
      });
    });

    it('let a stream fail only to what does not append to it again: dead-letter by default', () => {
      expect(build({ queueType: 'stream' }).failure.mode).toBe('drop');
      const plan = new TopologyBuilder().consumer(
        { bindingKeys: [], queue: { name: 'events' }, queueType: 'stream' },
        'Events.on',
        1,
        { mode: 'retry' },
      );
      expect(plan.failure.mode).toBe('dead-letter');
      expect(() =>
        new TopologyBuilder().consumer(
          { bindingKeys: [], queue: { name: 'events' }, queueType: 'stream', failure: 'requeue' },
          'Events.on',
          1,
        ),
      ).toThrow(/^Events\.on: failure mode "requeue" cannot work on a stream/);
    });
  });

  it.each<[Partial<ConsumerSpec>, string]>([
    [{ queueType: 'lazy' as never }, 'queueType must be "classic", "quorum", "stream", got "lazy"'],
    [{ deliveryLimit: 2 }, 'deliveryLimit needs queueType "quorum"'],
    [{ queueType: 'quorum', deliveryLimit: 0 }, 'deliveryLimit must be a whole number of at least 1, got 0'],
    [{ queueType: 'quorum', queue: { name: 'q', exclusive: true } }, 'quorum queues cannot be exclusive'],
    [
      { queueType: 'stream', queue: { name: 'q', durable: false } },
      'stream queues are always durable: remove durable: false',
    ],
    [{ queueType: 'quorum', queue: { name: 'q', autoDelete: true } }, 'quorum queues cannot be auto-delete'],
    [{ queueType: 'stream', maxPriority: 10 }, 'maxPriority needs queueType "classic"'],
    [{ queueType: 'stream', deliveryLimit: 3 }, 'deliveryLimit needs queueType "quorum"'],
    [
      { queueType: 'stream', singleActiveConsumer: true },
      'singleActiveConsumer cannot be used on a stream queue (only on classic or quorum queues)',
    ],
    [
      { queueType: 'stream', messageTtl: 1000 },
      'messageTtl cannot be used on a stream queue (only on classic or quorum queues)',
    ],
    [{ queueType: 'classic', maxAge: '7D' }, 'maxAge needs queueType "stream"'],
    [
      { queueType: 'stream', maxAge: '7 days' },
      'maxAge must be a number and a unit (Y, M, D, h, m, s), e.g. "7D", got "7 days"',
    ],
    [
      { queueType: 'quorum', maxLength: 5, overflow: 'reject-publish-dlx' },
      'overflow "reject-publish-dlx" is for classic queues; a quorum queue takes "drop-head" or "reject-publish"',
    ],
    [{ overflow: 'reject-publish' }, 'overflow needs maxLength or maxLengthBytes'],
    [{ maxPriority: 256 }, 'maxPriority must be a whole number from 1 to 255, got 256'],
    [
      { maxLength: 5, queue: { name: 'q', arguments: { 'x-max-length': 6 } } },
      'maxLength and arguments["x-max-length"] are both set; keep one',
    ],
    [
      { queueType: 'quorum', queue: { name: 'q', arguments: { 'x-queue-type': 'classic' } } },
      'queueType "quorum" contradicts arguments["x-queue-type"] "classic"',
    ],
    [
      { queueType: 'stream', prefetch: 0 },
      'prefetch 0 is no limit at all (the broker would send the whole queue to this consumer at once); give a limit from 1 to 65535',
    ],
    [{ prefetch: 70000 }, 'prefetch must be an integer from 1 to 65535, got 70000'],
  ])('refuses what RabbitMQ would refuse of a queue, naming the method: %j', (spec, message) => {
    expect(() => new TopologyBuilder().consumer({ bindingKeys: [], queue: { name: 'q' }, ...spec }, 'A.b', 1)).toThrow(
      new TopologyError(`A.b: ${message}`),
    );
  });

  it('checks the queues of the module options against their type too', () => {
    expect(() =>
      new TopologyBuilder().queue({ name: 'q', exclusive: true, arguments: { 'x-queue-type': 'quorum' } }, 'Options'),
    ).toThrow(new TopologyError('Options: queue "q": quorum queues cannot be exclusive'));
  });

  describe('service queues', () => {
    const on = (exchange: string, keys: string[], extra: Partial<ConsumerSpec> = {}): ConsumerSpec => ({
      exchange: topic(exchange),
      bindingKeys: keys,
      queue: { name: 'svc' },
      ...extra,
    });

    it('gives one consumer the union of the bindings; the same key on two exchanges is no overlap', () => {
      const builder = new TopologyBuilder();
      const service = builder.serviceConsumer(
        [
          { spec: on('orders', ['order.placed']), by: 'A.placed' },
          { spec: on('refunds', ['order.placed', 'refund.#']), by: 'B.refunds' },
        ],
        10,
      );
      expect(service.bindings.map((b) => [b.exchange, b.routingKey])).toEqual([
        ['orders', 'order.placed'],
        ['refunds', 'order.placed'],
        ['refunds', 'refund.#'],
      ]);
      expect(service.members.map((m) => m.by)).toEqual(['A.placed', 'B.refunds']);
      // The queue is taken: a plain consumer on it still fails.
      expect(() => builder.consumer({ bindingKeys: [], queue: { name: 'svc' } }, 'C.work', 1)).toThrow(
        /Queue "svc" is consumed by both A\.placed, B\.refunds and C\.work/,
      );
    });

    it('lets one method overlap itself, and refuses two fallbacks', () => {
      const builder = new TopologyBuilder();
      expect(() =>
        builder.serviceConsumer(
          [
            { spec: on('orders', ['order.*']), by: 'A.on' },
            { spec: on('orders', ['order.placed']), by: 'A.on' },
          ],
          10,
        ),
      ).not.toThrow();
      expect(() =>
        new TopologyBuilder().serviceConsumer(
          [
            { spec: on('orders', ['a']), by: 'A.one' },
            { spec: on('orders', ['#'], { fallback: true }), by: 'B.two' },
            { spec: on('orders', ['b.#'], { fallback: true }), by: 'C.three' },
          ],
          10,
        ),
      ).toThrow(
        new TopologyError(
          'Service queue "svc": B.two and C.three are both declared { fallback: true }; a queue has at most one fallback handler',
        ),
      );
    });

    it("refuses methods that disagree on the queue's declaration: durability, queue type, arguments", () => {
      const refusal = (extra: Partial<ConsumerSpec>) => () =>
        new TopologyBuilder().serviceConsumer(
          [
            { spec: on('orders', ['a']), by: 'A.one' },
            { spec: on('orders', ['b'], extra), by: 'B.two' },
          ],
          10,
        );
      expect(refusal({ queue: { name: 'svc', durable: false } })).toThrow(
        'Queue "svc" is declared differently by A.one and B.two: durable true vs false',
      );
      expect(refusal({ queueType: 'quorum' })).toThrow(
        'Queue "svc" is declared differently by A.one and B.two: arguments {} vs {"x-queue-type":"quorum"}',
      );
      expect(refusal({ queue: { name: 'svc', arguments: { 'x-max-length': 10 } } })).toThrow(
        'Queue "svc" is declared differently by A.one and B.two: arguments {} vs {"x-max-length":10}',
      );
    });

    it('keeps each method its own retry delays, and refuses a dead-letter queue of its own', () => {
      const service = new TopologyBuilder().serviceConsumer(
        [
          { spec: on('orders', ['a'], { failure: { retryDelays: [100] } }), by: 'A.one' },
          { spec: on('orders', ['b'], { failure: { retryDelays: [200, 300] } }), by: 'B.two' },
        ],
        10,
      );
      expect(service.members.map((m) => m.failure.retryDelays)).toEqual([[100], [200, 300]]);
      expect(service.extraQueues.map((q) => q.name)).toEqual([
        'svc.dlq',
        'warren.retry-100ms',
        'warren.retry-200ms',
        'warren.retry-300ms',
      ]);
      expect(() =>
        new TopologyBuilder().serviceConsumer(
          [
            { spec: on('orders', ['a']), by: 'A.one' },
            { spec: on('orders', ['b'], { failure: { deadLetterQueue: 'mine' } }), by: 'B.two' },
          ],
          10,
        ),
      ).toThrow(
        /A\.one and B\.two consume it with different settings: dead-letter target \{"exchange":"","routingKey":"svc\.dlq"\} vs \{"exchange":"","routingKey":"mine"\}/,
      );
    });
  });

  describe('exchange-to-exchange bindings', () => {
    const by = 'WarrenModule options (topology)';

    it('binds declared exchanges, once however many declare it, with every declarer', () => {
      const builder = new TopologyBuilder();
      builder.exchange(topic('orders'), by);
      builder.exchange({ name: 'audit', type: 'fanout', internal: true }, by);
      const decl = builder.exchangeBinding({ source: 'orders', destination: 'audit', routingKey: 'order.#' }, by);
      expect(decl).toEqual({ source: 'orders', destination: 'audit', routingKey: 'order.#', arguments: {} });
      builder.exchangeBinding({ source: 'orders', destination: 'audit', routingKey: 'order.#' }, 'Audit.on');
      expect(builder.shared().exchangeBindings).toEqual([decl]);
      expect(builder.declarations().exchangeBindings).toEqual([{ ...decl, declaredBy: [by, 'Audit.on'] }]);
      // RabbitMQ's built-in exchanges need no declaration, either way.
      builder.exchangeBinding({ source: 'amq.topic', destination: 'audit', routingKey: '#' }, by);
      builder.exchangeBinding({ source: 'orders', destination: 'amq.fanout', routingKey: 'x' }, by);
    });

    it.each([
      [
        { source: 'orders', destination: 'nowhere', routingKey: 'k' },
        'binding of exchange "nowhere" to exchange "orders": its destination "nowhere" is an exchange nothing declares; declare it first (topology.exchanges)',
      ],
      [
        { source: 'elsewhere', destination: 'orders', routingKey: 'k' },
        'its source "elsewhere" is an exchange nothing declares',
      ],
      [
        { source: '', destination: 'orders', routingKey: 'k' },
        'the default exchange ("") cannot be bound to another exchange, either way',
      ],
      [
        { source: 'orders', destination: 'amq.mine', routingKey: 'k' },
        'uses the prefix "amq.", which RabbitMQ reserves',
      ],
      [
        { source: 'orders', destination: 'orders', routingKey: 'order.*x' },
        'invalid binding key "order.*x" on topic exchange "orders"',
      ],
    ])('refuses %j, naming the declarer', (binding, message) => {
      const builder = new TopologyBuilder();
      builder.exchange(topic('orders'), by);
      expect(() => builder.exchangeBinding(binding, by)).toThrow(TopologyError);
      expect(() => builder.exchangeBinding(binding, by)).toThrow(`${by}: `);
      expect(() => builder.exchangeBinding(binding, by)).toThrow(message);
    });

    it("declares a handler's `from` exchange with its own and binds it into the handler's exchange", () => {
      const builder = new TopologyBuilder();
      const spec: ConsumerSpec = {
        exchange: { name: 'audit', type: 'fanout' },
        bindingKeys: [],
        queue: { name: 'audit.log' },
        sources: [
          { exchange: topic('orders'), keys: ['order.placed', 'order.cancelled'] },
          { exchange: { name: 'amq.fanout', type: 'fanout' }, keys: [] },
        ],
      };
      const consumer = builder.consumer(spec, 'Audit.onAny', 10);
      expect(consumer.exchanges.map((e) => e.name)).toEqual(['audit', 'orders']);
      expect(consumer.exchangeBindings).toEqual([
        { source: 'orders', destination: 'audit', routingKey: 'order.placed', arguments: {} },
        { source: 'orders', destination: 'audit', routingKey: 'order.cancelled', arguments: {} },
        { source: 'amq.fanout', destination: 'audit', routingKey: '', arguments: {} },
      ]);
      // The source is declared like any exchange: another declarer that disagrees is a contradiction.
      expect(() => builder.exchange({ name: 'orders', type: 'direct' }, 'Orders.publisher')).toThrow(
        'Exchange "orders" is declared differently by Audit.onAny and Orders.publisher: type "topic" vs "direct"',
      );
    });

    it('refuses `from` on a service queue, whose dispatcher routes by the exchange a message was published to', () => {
      const builder = new TopologyBuilder();
      const member = (by: string, key: string, sources?: ConsumerSpec['sources']) => ({
        by,
        spec: { exchange: topic('billing'), bindingKeys: [key], queue: { name: 'svc' }, sources },
      });
      expect(() =>
        builder.serviceConsumer(
          [member('Svc.a', 'a'), member('Svc.b', 'b', [{ exchange: topic('orders'), keys: ['x'] }])],
          10,
        ),
      ).toThrow('Svc.b: `from` (an exchange-to-exchange binding) cannot be used on service queue "svc"');
    });
  });
});

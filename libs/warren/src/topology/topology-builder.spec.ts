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

  it.each<[Partial<ConsumerSpec>, string]>([
    [{ queueType: 'stream' as never }, 'queueType must be "classic" or "quorum", got "stream"'],
    [{ deliveryLimit: 2 }, 'deliveryLimit needs queueType "quorum"'],
    [{ queueType: 'quorum', deliveryLimit: 0 }, 'deliveryLimit must be a positive integer, got 0'],
    [{ queueType: 'quorum', queue: { name: 'q', exclusive: true } }, 'quorum queues are durable and never exclusive'],
    [{ prefetch: 70000 }, 'prefetch must be an integer from 0 to 65535, got 70000'],
  ])('refuses what RabbitMQ would refuse of a queue, naming the method: %j', (spec, message) => {
    expect(() => new TopologyBuilder().consumer({ bindingKeys: [], queue: { name: 'q' }, ...spec }, 'A.b', 1)).toThrow(
      new TopologyError(`A.b: ${message}`),
    );
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
});

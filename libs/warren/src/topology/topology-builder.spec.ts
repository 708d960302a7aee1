import { TopologyError } from '../warren.errors.js';
import { TopologyBuilder } from './topology-builder.js';

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
});

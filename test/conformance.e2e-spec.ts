import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { Channel, ConfirmChannel, ConsumeMessage, Message, MessageProperties } from 'amqplib';
import { randomBytes } from 'node:crypto';
import { topicMatches } from 'nestjs-warren';
import { createConnectionManager } from '../libs/warren/src/connection/connection-factory.js';
import { delayLadderTopology, delayRoute, deliveryBinding } from '../libs/warren/src/topology/delay-ladder.js';
import { brokerUrl, waitUntil } from './support/broker.js';
import { TUTORIAL_TOPIC_KEYS } from './support/tutorial-topic-table.js';

/**
 * The in-memory broker against RabbitMQ: every case runs, through the same adapter (Warren's own
 * `createConnectionManager` and the amqplib-shaped channels its setups receive), first on the real
 * broker and then on `memory://`, and asserts that both observed the same thing AND that it is
 * what RabbitMQ is documented to do, so no case can pass by both brokers doing nothing.
 * Observations are outcomes (what arrived where, with which flags and headers, which errors),
 * never timings.
 */

const RUN = randomBytes(3).toString('hex');

/** A memory broker of its own, authenticating as the same user as the real broker (for `user_id`). */
function memoryUrl(): string {
  const user = decodeURIComponent(new URL(brokerUrl()).username) || 'guest';
  return `memory://${encodeURIComponent(user)}@conformance-${RUN}`;
}

type BrokerKind = 'rabbitmq' | 'memory';

/** One connection, opened by Warren's connection factory. */
class Connection {
  constructor(readonly manager: AmqpConnectionManager) {}

  /** A raw channel: what a ChannelWrapper's setup function receives (amqplib's, or the memory broker's). */
  channel(confirm = true): Promise<ConfirmChannel> {
    return new Promise((resolve) => {
      const wrapper = this.manager.createChannel({
        confirm,
        setup: async (channel: Channel) => resolve(channel as ConfirmChannel),
      });
      wrapper.on('error', () => undefined);
    });
  }

  close(): Promise<void> {
    return this.manager.close();
  }
}

/** One case's run on one broker: names, connections, and the cleanup of both. */
class Session {
  private readonly connections: Connection[] = [];
  private readonly queues = new Set<string>();
  private readonly exchanges = new Set<string>();

  constructor(
    readonly kind: BrokerKind,
    private readonly url: string,
    private readonly prefix: string,
  ) {}

  /** A queue name of this case (the same on both brokers), deleted afterwards. */
  queue(local: string): string {
    const name = `${this.prefix}.${local}`;
    this.queues.add(name);
    return name;
  }

  exchange(local: string): string {
    const name = `${this.prefix}.${local}`;
    this.exchanges.add(name);
    return name;
  }

  async connect(label = 'conn'): Promise<Connection> {
    const manager = await createConnectionManager([this.url], {
      heartbeatIntervalInSeconds: 5,
      reconnectTimeInSeconds: 1,
      connectionOptions: { clientProperties: { connection_name: `conformance:${label}` } },
    });
    await manager.connect({ timeout: 10_000 });
    const connection = new Connection(manager);
    this.connections.push(connection);
    return connection;
  }

  async close(): Promise<void> {
    const cleanup = await this.connect('cleanup');
    for (const q of this.queues) await quietly(cleanup, (ch) => ch.deleteQueue(q));
    for (const x of this.exchanges) await quietly(cleanup, (ch) => ch.deleteExchange(x));
    for (const c of this.connections) await c.close();
  }
}

async function quietly(connection: Connection, op: (ch: ConfirmChannel) => Promise<unknown>): Promise<void> {
  const ch = await connection.channel();
  ch.on('error', () => undefined);
  await op(ch).catch(() => undefined);
}

/** Runs `scenario` on RabbitMQ, then on the in-memory broker, each in a fresh session. */
async function onBoth<T>(name: string, scenario: (s: Session) => Promise<T>): Promise<Record<BrokerKind, T>> {
  const prefix = `conformance.${RUN}.${name}`;
  const results = {} as Record<BrokerKind, T>;
  for (const [kind, url] of [
    ['rabbitmq', brokerUrl()],
    ['memory', memoryUrl()],
  ] as const) {
    const session = new Session(kind, url, prefix);
    try {
      results[kind] = await scenario(session);
    } finally {
      await session.close();
    }
  }
  return results;
}

/** Every message left in `queue`, in order, taken with basic.get (no ack). */
async function drain(ch: Channel, queue: string): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const msg = await ch.get(queue, { noAck: true });
    if (!msg) return bodies;
    bodies.push(msg.content.toString());
  }
}

async function drainWithFlags(ch: Channel, queue: string): Promise<[string, boolean][]> {
  const out: [string, boolean][] = [];
  for (;;) {
    const msg = await ch.get(queue, { noAck: true });
    if (!msg) return out;
    out.push([msg.content.toString(), msg.fields.redelivered]);
  }
}

interface ErrorSeen {
  name?: string;
  message: string;
  code?: number;
}

function seen(err: unknown): ErrorSeen {
  const e = err as Error & { code?: number };
  return e.code === undefined ? { name: e.name, message: e.message } : { message: e.message, code: e.code };
}

/** How an operation ended: its result, or the error it was rejected with. */
async function outcome(promise: Promise<unknown>): Promise<{ ok: unknown } | { error: ErrorSeen }> {
  try {
    return { ok: await promise };
  } catch (err) {
    return { error: seen(err) };
  }
}

/** A channel's 'error' and 'close' events, in order. */
function watch(ch: Channel): string[] {
  const events: string[] = [];
  ch.on('error', (err: Error & { code?: number }) => events.push(`error ${err.code}: ${err.message}`));
  ch.on('close', () => events.push('close'));
  return events;
}

/** A seeded PRNG (mulberry32): the random cases are the same on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('conformance: the in-memory broker behaves as RabbitMQ', () => {
  it('routes the tutorial topic table (Q1 *.orange.*; Q2 *.*.rabbit and lazy.#)', async () => {
    const keys = [...TUTORIAL_TOPIC_KEYS];
    const result = await onBoth('tutorial-topic', async (s) => {
      const ch = await (await s.connect()).channel();
      const [x, q1, q2] = [s.exchange('topic_logs'), s.queue('q1'), s.queue('q2')];
      await ch.assertExchange(x, 'topic', { durable: false });
      await ch.assertQueue(q1, { durable: false });
      await ch.assertQueue(q2, { durable: false });
      await ch.bindQueue(q1, x, '*.orange.*');
      await ch.bindQueue(q2, x, '*.*.rabbit');
      await ch.bindQueue(q2, x, 'lazy.#');
      for (const key of keys) ch.publish(x, key, Buffer.from(key));
      await ch.waitForConfirms();
      return { Q1: await drain(ch, q1), Q2: await drain(ch, q2) };
    });
    expect(result.memory).toEqual(result.rabbitmq);
    expect(result.rabbitmq).toEqual({
      Q1: ['quick.orange.rabbit', 'lazy.orange.elephant', 'quick.orange.fox'],
      // lazy.pink.rabbit matches both of Q2's bindings and arrives once.
      Q2: [
        'quick.orange.rabbit',
        'lazy.orange.elephant',
        'lazy.brown.fox',
        'lazy.pink.rabbit',
        'lazy.orange.new.rabbit',
      ],
    });
  });

  it('routes randomly generated routing keys against randomly generated binding patterns the same way', async () => {
    const random = prng(0x5eed);
    const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
    const make = (alphabet: string[]) =>
      Array.from({ length: Math.floor(random() * 5) }, () => pick(alphabet)).join('.');
    // The edge cases first (empty keys and empty words), then the generated ones.
    const patterns = [
      ...new Set([
        '*',
        '.#',
        '#.',
        '',
        '*.*',
        '#',
        ...Array.from({ length: 60 }, () => make(['a', 'b', '', '*', '#', '#'])),
      ]),
    ];
    const keys = [...new Set(['', '.', 'a', ...Array.from({ length: 100 }, () => make(['a', 'b', 'c', '', '*']))])];
    const result = await onBoth('random-topic', async (s) => {
      const ch = await (await s.connect()).channel();
      const x = s.exchange('random');
      await ch.assertExchange(x, 'topic', { durable: false });
      const queues = patterns.map((_, i) => s.queue(`p${i}`));
      for (const [i, q] of queues.entries()) {
        await ch.assertQueue(q, { durable: false });
        await ch.bindQueue(q, x, patterns[i]);
      }
      keys.forEach((key, i) => ch.publish(x, key, Buffer.from(String(i))));
      await ch.waitForConfirms();
      const matched: Record<string, string[]> = {};
      for (const [i, q] of queues.entries()) {
        matched[JSON.stringify(patterns[i])] = (await drain(ch, q)).map((k) => keys[Number(k)]);
      }
      return matched;
    });
    expect(result.memory).toEqual(result.rabbitmq);
    // What RabbitMQ did is what its documented matching (topicMatches) says.
    const expected: Record<string, string[]> = {};
    for (const p of patterns) expected[JSON.stringify(p)] = keys.filter((k) => topicMatches(p, k));
    expect(result.rabbitmq).toEqual(expected);
    const pairs = patterns.length * keys.length;
    const hits = Object.values(result.rabbitmq).reduce((n, ks) => n + ks.length, 0);
    // Enough pairs, and both outcomes well represented: the case cannot pass by matching nothing.
    expect(pairs).toBeGreaterThan(2000);
    expect(hits).toBeGreaterThan(100);
    expect(pairs - hits).toBeGreaterThan(100);
    expect(keys).toContain('');
    expect(patterns.some((p) => p.includes('..') || p.startsWith('.') || p.endsWith('.'))).toBe(true);
  });

  it('routes direct, fanout and default-exchange publishes', async () => {
    const result = await onBoth('direct-fanout', async (s) => {
      const ch = await (await s.connect()).channel();
      const [direct, fanout] = [s.exchange('direct'), s.exchange('fanout')];
      const [info, errors, all, f1, f2] = ['info', 'errors', 'all', 'f1', 'f2'].map((q) => s.queue(q));
      await ch.assertExchange(direct, 'direct', { durable: false });
      await ch.assertExchange(fanout, 'fanout', { durable: false });
      for (const q of [info, errors, all, f1, f2]) await ch.assertQueue(q, { durable: false });
      await ch.bindQueue(info, direct, 'info');
      await ch.bindQueue(info, direct, 'warning');
      await ch.bindQueue(info, direct, 'info'); // binding twice is one binding
      await ch.bindQueue(errors, direct, 'error');
      for (const key of ['info', 'warning', 'error']) await ch.bindQueue(all, direct, key);
      await ch.bindQueue(f1, fanout, 'ignored');
      await ch.bindQueue(f2, fanout, '');
      for (const key of ['info', 'warning', 'error', 'debug', '', 'info.x'])
        ch.publish(direct, key, Buffer.from(`d:${key}`));
      for (const key of ['a', '', 'b.c']) ch.publish(fanout, key, Buffer.from(`f:${key}`));
      ch.publish('', info, Buffer.from('default:info'));
      ch.publish('', s.queue('missing'), Buffer.from('default:missing'));
      // What an exchange cannot route goes to its alternate exchange.
      const [withAe, ae, unrouted] = [s.exchange('with-ae'), s.exchange('ae'), s.queue('unrouted')];
      await ch.assertExchange(ae, 'fanout', { durable: false });
      await ch.assertExchange(withAe, 'direct', { durable: false, alternateExchange: ae });
      await ch.assertQueue(unrouted, { durable: false });
      await ch.bindQueue(unrouted, ae, '');
      await ch.bindQueue(errors, withAe, 'error');
      ch.publish(withAe, 'error', Buffer.from('ae:error'));
      ch.publish(withAe, 'other', Buffer.from('ae:other'));
      await ch.waitForConfirms();
      const out: Record<string, string[]> = {};
      for (const [label, q] of Object.entries({ info, errors, all, f1, f2, unrouted })) out[label] = await drain(ch, q);
      return out;
    });
    expect(result.memory).toEqual(result.rabbitmq);
    expect(result.rabbitmq).toEqual({
      info: ['d:info', 'd:warning', 'default:info'],
      errors: ['d:error', 'ae:error'],
      all: ['d:info', 'd:warning', 'd:error'],
      f1: ['f:a', 'f:', 'f:b.c'],
      f2: ['f:a', 'f:', 'f:b.c'],
      unrouted: ['ae:other'],
    });
  });

  it('routes through exchange-to-exchange bindings: each exchange once, each queue one copy, cycles and unbinding', async () => {
    const result = await onBoth('e2e-bindings', async (s) => {
      const connection = await s.connect();
      const ch = await connection.channel();
      const [src, dst, dst2] = [s.exchange('src'), s.exchange('dst'), s.exchange('dst2')];
      const [qa, qb, qboth] = ['qa', 'qb', 'qboth'].map((q) => s.queue(q));
      await ch.assertExchange(src, 'topic', { durable: false });
      await ch.assertExchange(dst, 'fanout', { durable: false });
      await ch.assertExchange(dst2, 'direct', { durable: false });
      for (const q of [qa, qb, qboth]) await ch.assertQueue(q, { durable: false });
      await ch.bindQueue(qa, dst, '');
      await ch.bindQueue(qb, dst2, 'order.placed');
      await ch.bindQueue(qboth, src, 'order.*');
      await ch.bindQueue(qboth, dst, '');
      await ch.bindExchange(dst, src, 'order.*');
      await ch.bindExchange(dst2, src, '#');
      await ch.bindExchange(dst2, src, '#'); // binding twice is one binding
      // A cycle: the fanout sends everything back to the topic exchange, which has already routed it.
      await ch.bindExchange(src, dst, '');
      for (const key of ['order.placed', 'order.cancelled', 'other.x']) ch.publish(src, key, Buffer.from(`src:${key}`));
      ch.publish(dst, 'k', Buffer.from('dst:k'));
      await ch.waitForConfirms();
      const routed = { qa: await drain(ch, qa), qb: await drain(ch, qb), qboth: await drain(ch, qboth) };
      await ch.unbindExchange(dst, src, 'order.*');
      ch.publish(src, 'order.late', Buffer.from('src:order.late'));
      await ch.waitForConfirms();
      const unbound = { qa: await drain(ch, qa), qboth: await drain(ch, qboth) };
      // Deleting an exchange deletes the bindings to it: a new one of that name has none.
      await ch.deleteExchange(dst2);
      await ch.assertExchange(dst2, 'direct', { durable: false });
      await ch.bindQueue(qb, dst2, 'order.placed');
      ch.publish(src, 'order.placed', Buffer.from('src:again'));
      await ch.waitForConfirms();
      const afterDelete = { qb: await drain(ch, qb) };
      const refused = async (act: (c: ConfirmChannel) => Promise<unknown>) => {
        const c = await connection.channel(false);
        const events = watch(c);
        const result = await outcome(act(c));
        await waitUntil('the channel closed', () => events.includes('close'));
        return { result, events };
      };
      return {
        routed,
        unbound,
        afterDelete,
        fromDefault: await refused((c) => c.bindExchange(dst, '', 'k')),
        fromMissing: await refused((c) => c.bindExchange(dst, s.exchange('missing'), 'k')),
      };
    });
    expect(result.memory).toEqual(result.rabbitmq);
    const prefix = `conformance.${RUN}.e2e-bindings`;
    expect(result.rabbitmq).toMatchObject({
      routed: {
        qa: ['src:order.placed', 'src:order.cancelled', 'dst:k'],
        qb: ['src:order.placed'],
        qboth: ['src:order.placed', 'src:order.cancelled', 'dst:k'],
      },
      unbound: { qa: [], qboth: ['src:order.late'] },
      afterDelete: { qb: [] },
      fromMissing: {
        result: { error: { code: 404 } },
        events: [expect.stringContaining(`no exchange '${prefix}.missing' in vhost '/'`), 'close'],
      },
    });
    expect(result.rabbitmq.fromDefault.events[0]).toMatch(/^error 403: /);
  });

  it('routes a service queue bound on three exchanges: one copy per message, each naming its exchange and key; a retry trip by the default exchange', async () => {
    // What a service queue's dispatcher reads from the broker (consumer/service-dispatcher.ts): the
    // delivery's exchange and routing key, however many of the queue's bindings match, and a
    // retried copy coming back through a TTL queue by the default exchange with its headers.
    const result = await onBoth('service', async (s) => {
      const connection = await s.connect();
      const ch = await connection.channel();
      const [topic, direct, headers, retry] = ['topic', 'direct', 'headers', 'retry'].map((x) => s.exchange(x));
      const [svc, wait] = [s.queue('svc'), s.queue('retry-wait')];
      await ch.assertExchange(topic, 'topic', { durable: false });
      await ch.assertExchange(direct, 'direct', { durable: false });
      await ch.assertExchange(headers, 'headers', { durable: false });
      await ch.assertExchange(retry, 'fanout', { durable: false });
      await ch.assertQueue(svc, { durable: false });
      // Warren's retry queue: what it holds dead-letters by the default exchange, its routing key kept.
      await ch.assertQueue(wait, { durable: false, arguments: { 'x-message-ttl': 20, 'x-dead-letter-exchange': '' } });
      await ch.bindQueue(wait, retry, '');
      for (const key of ['order.placed', 'order.*', 'shipment.#', '#.eu']) await ch.bindQueue(svc, topic, key);
      for (const key of ['invoice.paid', 'invoice.void']) await ch.bindQueue(svc, direct, key);
      await ch.bindQueue(svc, headers, '', { format: 'pdf' });
      const sends: [string, string, Record<string, unknown>?][] = [
        [topic, 'order.placed'], // two bindings match: one copy
        [topic, 'order.cancelled'],
        [topic, 'shipment.sent.eu'], // shipment.# and #.eu: one copy
        [topic, 'invoice.paid'], // bound on the direct exchange only
        [direct, 'invoice.paid'],
        [direct, 'order.placed'], // bound on the topic exchange only
        [headers, 'any.key', { format: 'pdf' }],
        [headers, 'any.key', { format: 'zip' }],
      ];
      for (const [x, key, h] of sends) ch.publish(x, key, Buffer.from(`${x.split('.').pop()}:${key}`), { headers: h });
      await ch.waitForConfirms();
      const routed: [string, string, string][] = [];
      for (;;) {
        const m = await ch.get(svc, { noAck: true });
        if (!m) break;
        routed.push([m.content.toString(), m.fields.exchange, m.fields.routingKey]);
      }
      // The retry trip: published to the retry exchange with the queue's name as routing key.
      ch.publish(retry, svc, Buffer.from('retried'), {
        headers: { 'x-warren-original-exchange': topic, 'x-warren-original-routing-key': 'order.placed' },
      });
      await ch.waitForConfirms();
      let back: Message | false = false;
      await waitUntil('the retried copy back', async () => (back = await ch.get(svc, { noAck: true })) !== false);
      const m = back as unknown as Message;
      const { 'x-death': deaths, ...kept } = m.properties.headers ?? {};
      return {
        routed,
        retried: {
          body: m.content.toString(),
          exchange: m.fields.exchange,
          routingKey: m.fields.routingKey,
          kept,
          diedIn: (deaths as { queue: string; reason: string }[]).map((d) => [d.queue, d.reason]),
        },
      };
    });
    expect(result.memory).toEqual(result.rabbitmq);
    const prefix = `conformance.${RUN}.service`;
    const [topic, direct, svc] = [`${prefix}.topic`, `${prefix}.direct`, `${prefix}.svc`];
    expect(result.rabbitmq).toEqual({
      routed: [
        ['topic:order.placed', topic, 'order.placed'],
        ['topic:order.cancelled', topic, 'order.cancelled'],
        ['topic:shipment.sent.eu', topic, 'shipment.sent.eu'],
        ['direct:invoice.paid', direct, 'invoice.paid'],
        ['headers:any.key', `${prefix}.headers`, 'any.key'],
      ],
      retried: {
        body: 'retried',
        exchange: '',
        routingKey: svc,
        kept: {
          'x-warren-original-exchange': topic,
          'x-warren-original-routing-key': 'order.placed',
          'x-first-death-exchange': `${prefix}.retry`,
          'x-first-death-queue': `${prefix}.retry-wait`,
          'x-first-death-reason': 'expired',
        },
        diedIn: [[`${prefix}.retry-wait`, 'expired']],
      },
    });
  });

  it('routes headers exchanges with x-match all and any, ignoring x- arguments', async () => {
    const bindings: Record<string, Record<string, unknown>> = {
      all: { 'x-match': 'all', format: 'pdf', type: 'report' },
      any: { 'x-match': 'any', format: 'pdf', type: 'report' },
      defaultAll: { format: 'pdf', 'x-custom': 'not compared' },
      emptyAll: {},
      emptyAny: { 'x-match': 'any' },
      number: { n: 1 },
    };
    const messages: [string, Record<string, unknown> | undefined][] = [
      ['pdf-report', { format: 'pdf', type: 'report' }],
      ['pdf-log', { format: 'pdf', type: 'log' }],
      ['zip-report', { format: 'zip', type: 'report' }],
      ['zip', { format: 'zip' }],
      ['none', undefined],
      ['pdf-x', { format: 'pdf', 'x-custom': 'other' }],
      ['n1', { n: 1 }],
      ['n-string', { n: '1' }],
      ['pdf-report-extra', { format: 'pdf', type: 'report', extra: true }],
    ];
    const result = await onBoth('headers', async (s) => {
      const ch = await (await s.connect()).channel();
      const x = s.exchange('headers');
      await ch.assertExchange(x, 'headers', { durable: false });
      for (const [label, args] of Object.entries(bindings)) {
        await ch.assertQueue(s.queue(label), { durable: false });
        await ch.bindQueue(s.queue(label), x, '', args);
      }
      for (const [label, headers] of messages) ch.publish(x, 'key-ignored', Buffer.from(label), { headers });
      await ch.waitForConfirms();
      const out: Record<string, string[]> = {};
      for (const label of Object.keys(bindings)) out[label] = await drain(ch, s.queue(label));
      return out;
    });
    expect(result.memory).toEqual(result.rabbitmq);
    expect(result.rabbitmq).toEqual({
      all: ['pdf-report', 'pdf-report-extra'],
      any: ['pdf-report', 'pdf-log', 'zip-report', 'pdf-x', 'pdf-report-extra'],
      defaultAll: ['pdf-report', 'pdf-log', 'pdf-x', 'pdf-report-extra'],
      emptyAll: messages.map(([label]) => label),
      emptyAny: [],
      number: ['n1'],
    });
  });

  it('delivers round robin within each consumer’s prefetch, and requeues a closed channel’s unacked messages in place', async () => {
    const result = await onBoth('prefetch', async (s) => {
      const connection = await s.connect();
      const [ctl, a, b] = [
        await connection.channel(),
        await connection.channel(false),
        await connection.channel(false),
      ];
      const q = s.queue('work');
      await ctl.assertQueue(q, { durable: false });
      const got: Record<'a' | 'b', ConsumeMessage[]> = { a: [], b: [] };
      await a.prefetch(2);
      await b.prefetch(2);
      await a.consume(q, (m) => m && got.a.push(m));
      await b.consume(q, (m) => m && got.b.push(m));
      for (let i = 1; i <= 6; i++) ctl.sendToQueue(q, Buffer.from(`m${i}`));
      await ctl.waitForConfirms();
      const bodies = (ms: ConsumeMessage[]) => ms.map((m) => m.content.toString());
      await waitUntil('two deliveries for each consumer', () => got.a.length === 2 && got.b.length === 2);
      const first = { a: bodies(got.a), b: bodies(got.b), ready: (await ctl.checkQueue(q)).messageCount };
      // An ack frees a slot: that consumer gets the next message.
      b.ack(got.b[0]);
      await waitUntil('a third delivery to b', () => got.b.length === 3);
      // Closing a's channel returns its two unacked messages, redelivered, before m6.
      await a.close();
      await waitUntil('a’s messages back in the queue', async () => (await ctl.checkQueue(q)).messageCount === 3);
      return { first, b: bodies(got.b), a: bodies(got.a), left: await drainWithFlags(ctl, q) };
    });
    expect(result.memory).toEqual(result.rabbitmq);
    expect(result.rabbitmq).toEqual({
      first: { a: ['m1', 'm3'], b: ['m2', 'm4'], ready: 2 },
      a: ['m1', 'm3'],
      b: ['m2', 'm4', 'm5'],
      left: [
        ['m1', true],
        ['m3', true],
        ['m6', false],
      ],
    });
  });

  it('orders priority queues, serves a single active consumer, and delivers TTL 0 only to a waiting consumer', async () => {
    const result = await onBoth('queue-features', async (s) => {
      const connection = await s.connect();
      const ch = await connection.channel();
      const [prio, sac, ttl0waiting, ttl0alone] = ['prio', 'sac', 'ttl0-waiting', 'ttl0-alone'].map((q) => s.queue(q));
      await ch.assertQueue(prio, { durable: false, arguments: { 'x-max-priority': 5 } });
      for (const [body, priority] of [
        ['p1', 1],
        ['p5', 5],
        ['none', undefined],
        ['p9', 9],
        ['p3', 3],
      ] as const) {
        ch.sendToQueue(prio, Buffer.from(body), { priority });
      }
      await ch.assertQueue(sac, { durable: false, arguments: { 'x-single-active-consumer': true } });
      const [a, b] = [await connection.channel(false), await connection.channel(false)];
      const got: Record<'a' | 'b', [string, boolean][]> = { a: [], b: [] };
      await a.consume(sac, (m) => m && got.a.push([m.content.toString(), m.fields.redelivered]));
      await b.consume(sac, (m) => m && got.b.push([m.content.toString(), m.fields.redelivered]));
      for (const body of ['s1', 's2', 's3']) ch.sendToQueue(sac, Buffer.from(body));
      await ch.assertQueue(ttl0waiting, { durable: false, arguments: { 'x-message-ttl': 0 } });
      await ch.assertQueue(ttl0alone, { durable: false, arguments: { 'x-message-ttl': 0 } });
      const waiting: string[] = [];
      await ch.consume(ttl0waiting, (m) => m && waiting.push(m.content.toString()), { noAck: true });
      ch.sendToQueue(ttl0waiting, Buffer.from('taken at once'));
      ch.sendToQueue(ttl0alone, Buffer.from('expired at once'));
      await ch.waitForConfirms();
      await waitUntil('the active consumer’s three messages', () => got.a.length === 3);
      await waitUntil('the waiting consumer’s message', () => waiting.length === 1);
      // The active consumer goes: the next one takes over, with what it had not acked.
      await a.close();
      await waitUntil('the new active consumer’s messages', () => got.b.length === 3);
      return {
        priorities: await drain(ch, prio),
        sac: got,
        waiting,
        alone: (await ch.checkQueue(ttl0alone)).messageCount,
      };
    });
    expect(result.memory).toEqual(result.rabbitmq);
    expect(result.rabbitmq).toEqual({
      priorities: ['p5', 'p9', 'p3', 'p1', 'none'],
      sac: {
        a: [
          ['s1', false],
          ['s2', false],
          ['s3', false],
        ],
        b: [
          ['s1', true],
          ['s2', true],
          ['s3', true],
        ],
      },
      waiting: ['taken at once'],
      alone: 0,
    });
  });

  it('redelivers a nacked-with-requeue message flagged redelivered; drops a rejected one', async () => {
    const result = await onBoth('nack', async (s) => {
      const ch = await (await s.connect()).channel();
      const q = s.queue('nack');
      await ch.assertQueue(q, { durable: false });
      const deliveries: [string, boolean, number][] = [];
      await ch.prefetch(1);
      await ch.consume(q, (m) => {
        if (!m) return;
        deliveries.push([m.content.toString(), m.fields.redelivered, m.fields.deliveryTag]);
        if (m.content.toString() === 'end') ch.ack(m);
        else if (!m.fields.redelivered) ch.nack(m, false, true);
        else ch.reject(m, false);
      });
      ch.sendToQueue(q, Buffer.from('x'));
      await ch.waitForConfirms();
      await waitUntil('x rejected after its redelivery', () => deliveries.length === 2);
      ch.sendToQueue(q, Buffer.from('end'));
      await waitUntil('the end marker', () => deliveries.length === 3);
      return { deliveries, left: (await ch.checkQueue(q)).messageCount };
    });
    expect(result.memory).toEqual(result.rabbitmq);
    expect(result.rabbitmq).toEqual({
      deliveries: [
        ['x', false, 1],
        ['x', true, 2],
        ['end', false, 3],
      ],
      left: 0,
    });
  });

  it('acks every unacked delivery up to a tag with one multiple ack, and only those', async () => {
    const result = await onBoth('multiple-ack', async (s) => {
      const connection = await s.connect();
      const ch = await connection.channel();
      const q = s.queue('multiple');
      await ch.assertQueue(q, { durable: false });
      for (const body of ['1', '2', '3', '4', '5', '6']) ch.sendToQueue(q, Buffer.from(body));
      await ch.waitForConfirms();
      const consumer = await connection.channel(false);
      await consumer.prefetch(6);
      const got: ConsumeMessage[] = [];
      await consumer.consume(q, (m) => m && got.push(m));
      await waitUntil('six deliveries', () => got.length === 6);
      // 2 alone first, then everything up to 4 at once (a batch consumer's ack): 1, 3 and 4.
      consumer.ack(got[1]);
      consumer.ack(got[3], true);
      await consumer.close();
      // Closing the channel returns what it still held: 5 and 6, and nothing the multiple ack settled.
      return { tags: got.map((m) => m.fields.deliveryTag), left: await drainWithFlags(ch, q) };
    });
    expect(result.memory).toEqual(result.rabbitmq);
    expect(result.rabbitmq).toEqual({
      tags: [1, 2, 3, 4, 5, 6],
      left: [
        ['5', true],
        ['6', true],
      ],
    });
  });

  it('dead-letters expired (queue TTL, message TTL), rejected and overflowing messages with x-death headers', async () => {
    const result = await onBoth('dlx', async (s) => {
      const connection = await s.connect();
      const ch = await connection.channel();
      const [dlx, src] = [s.exchange('dlx'), s.exchange('src')];
      const [dead, ttl, perMessage, rejecting, short] = ['dead', 'ttl', 'per-message', 'rejecting', 'short'].map((q) =>
        s.queue(q),
      );
      await ch.assertExchange(dlx, 'direct', { durable: false });
      await ch.assertExchange(src, 'topic', { durable: false });
      await ch.assertQueue(dead, { durable: false });
      await ch.bindQueue(dead, dlx, 'dead');
      await ch.bindQueue(dead, dlx, rejecting);
      const toDead = { 'x-dead-letter-exchange': dlx, 'x-dead-letter-routing-key': 'dead' };
      await ch.assertQueue(ttl, { durable: false, arguments: { 'x-message-ttl': 30, ...toDead } });
      await ch.assertQueue(perMessage, { durable: false, arguments: toDead });
      await ch.assertQueue(rejecting, { durable: false, arguments: { 'x-dead-letter-exchange': dlx } });
      await ch.assertQueue(short, { durable: false, arguments: { 'x-max-length': 1, ...toDead } });
      await ch.bindQueue(ttl, src, 'a.*');
      ch.publish(src, 'a.b', Buffer.from('queue-ttl'), { CC: ['cc.key'], headers: { mine: 1 } });
      ch.sendToQueue(perMessage, Buffer.from('message-ttl'), { expiration: '10' });
      ch.sendToQueue(rejecting, Buffer.from('rejected'), { expiration: '60000' });
      ch.sendToQueue(rejecting, Buffer.from('rejected-again'), {
        headers: {
          'x-death': [{ queue: rejecting, reason: 'rejected', count: 5, exchange: '', 'routing-keys': [rejecting] }],
        },
      });
      ch.sendToQueue(short, Buffer.from('dropped-head'));
      ch.sendToQueue(short, Buffer.from('kept'));
      await ch.waitForConfirms();
      const consumer = await connection.channel(false);
      await consumer.consume(rejecting, (m) => m && consumer.nack(m, false, false));
      const arrived: Message[] = [];
      await ch.consume(dead, (m) => m && arrived.push(m), { noAck: true });
      await waitUntil('five dead letters', () => arrived.length === 5);
      const letters = arrived.map((m) => describeDeadLetter(m)).sort((l, r) => l.body.localeCompare(r.body));
      return { letters, shortLeft: (await ch.checkQueue(short)).messageCount };
    });
    expect(result.memory).toEqual(result.rabbitmq);
    const death = (queue: string, reason: string, exchange: string, keys: string[], extra = {}) => ({
      count: 1,
      queue,
      reason,
      exchange,
      'routing-keys': keys,
      timeIsTimestamp: true,
      ...extra,
    });
    const prefix = `conformance.${RUN}.dlx`;
    const [dlx, src] = [`${prefix}.dlx`, `${prefix}.src`];
    const [ttl, perMessage, rejecting, short] = ['ttl', 'per-message', 'rejecting', 'short'].map(
      (q) => `${prefix}.${q}`,
    );
    const first = (reason: string, queue: string, exchange: string) => ({
      'x-first-death-reason': reason,
      'x-first-death-queue': queue,
      'x-first-death-exchange': exchange,
    });
    expect(result.rabbitmq).toEqual({
      shortLeft: 1,
      letters: [
        {
          body: 'dropped-head',
          exchange: dlx,
          routingKey: 'dead',
          expiration: undefined,
          headers: first('maxlen', short, ''),
          deaths: [death(short, 'maxlen', '', [short])],
        },
        {
          body: 'message-ttl',
          exchange: dlx,
          routingKey: 'dead',
          expiration: undefined,
          headers: first('expired', perMessage, ''),
          deaths: [death(perMessage, 'expired', '', [perMessage], { 'original-expiration': '10' })],
        },
        {
          body: 'queue-ttl',
          exchange: dlx,
          routingKey: 'dead',
          expiration: undefined,
          headers: { mine: 1, ...first('expired', ttl, src) },
          deaths: [death(ttl, 'expired', src, ['a.b', 'cc.key'])],
        },
        {
          body: 'rejected',
          exchange: dlx,
          routingKey: rejecting,
          expiration: undefined,
          headers: first('rejected', rejecting, ''),
          deaths: [death(rejecting, 'rejected', '', [rejecting], { 'original-expiration': '60000' })],
        },
        {
          // A second death in the same queue for the same reason counts up; no x-first-death-* then.
          body: 'rejected-again',
          exchange: dlx,
          routingKey: rejecting,
          expiration: undefined,
          headers: {},
          deaths: [{ count: 6, queue: rejecting, reason: 'rejected', exchange: '', 'routing-keys': [rejecting] }],
        },
      ],
    });
  });

  it('walks a delay ladder: headers levels passing on by alternate exchanges, TTL queues dead-lettering down, the routing key kept; drops a cycle', async () => {
    // The queues and exchanges behind `publish(..., { delay })` (topology/delay-ladder.ts), three
    // levels of a 50 ms unit (long enough that timers late on a loaded machine keep the order): the broker behaviours the ladder stands on, on both brokers.
    const shape = { unitMs: 50, levels: 3 };
    const ladder = delayLadderTopology(shape);
    const result = await onBoth('ladder', async (s) => {
      const connection = await s.connect();
      const ch = await connection.channel();
      const dest = s.queue('dest');
      try {
        for (const e of ladder.exchanges)
          await ch.assertExchange(e.name, e.type, { durable: false, arguments: e.arguments });
        for (const q of ladder.queues) await ch.assertQueue(q.name, { durable: false, arguments: q.arguments });
        for (const b of ladder.bindings) await ch.bindQueue(b.queue, b.exchange, b.routingKey, b.arguments);
        await ch.assertQueue(dest, { durable: false });
        const delivery = deliveryBinding(shape.unitMs, { queue: dest });
        await ch.bindQueue(dest, delivery.source, '', delivery.arguments);
        // Longest first: they arrive by due time, each having waited in the levels of its set bits.
        for (const seconds of [5, 3, 1]) {
          const route = delayRoute(seconds * 1000, { queue: dest }, shape);
          if ('problem' in route) throw new Error(route.problem);
          ch.publish(route.exchange, dest, Buffer.from(String(seconds)), { headers: route.headers });
        }
        await ch.waitForConfirms();
        const arrived: Message[] = [];
        await ch.consume(dest, (m) => m && arrived.push(m), { noAck: true });
        await waitUntil('three delayed messages', () => arrived.length === 3);
        // The same trip again with the first trip's x-death: dead-lettered into level 0, which its
        // history names with no rejection since, it is a cycle, and dropped. The marker after it is not.
        const again = delayRoute(3000, { queue: dest }, shape);
        if ('problem' in again) throw new Error(again.problem);
        const history = arrived.find((m) => m.content.toString() === '3')!.properties.headers!;
        ch.publish(again.exchange, dest, Buffer.from('cycle'), { headers: { ...history, ...again.headers } });
        ch.publish(again.exchange, dest, Buffer.from('afresh'), { headers: again.headers });
        await ch.waitForConfirms();
        await waitUntil('the message sent afresh', () => arrived.some((m) => m.content.toString() === 'afresh'));
        await new Promise((r) => setTimeout(r, 100));
        return arrived.map((m) => ({
          body: m.content.toString(),
          exchange: m.fields.exchange,
          routingKey: m.fields.routingKey,
          waitedIn: (m.properties.headers?.['x-death'] as { queue: string }[]).map((d) => d.queue).reverse(),
        }));
      } finally {
        for (const q of ladder.queues) await quietly(connection, (c) => c.deleteQueue(q.name));
        for (const e of ladder.exchanges) await quietly(connection, (c) => c.deleteExchange(e.name));
      }
    });
    expect(result.memory).toEqual(result.rabbitmq);
    const [l0, l1, l2, deliver] = ['level-0', 'level-1', 'level-2', 'deliver'].map((n) => `warren.delay.50ms.${n}`);
    const dest = `conformance.${RUN}.ladder.dest`;
    expect(result.rabbitmq).toEqual([
      { body: '1', exchange: deliver, routingKey: dest, waitedIn: [l0] },
      { body: '3', exchange: deliver, routingKey: dest, waitedIn: [l1, l0] },
      // 5 = 101: level 2, then level 1 passed on at once by its alternate exchange, then level 0.
      { body: '5', exchange: deliver, routingKey: dest, waitedIn: [l2, l0] },
      { body: 'afresh', exchange: deliver, routingKey: dest, waitedIn: [l1, l0] },
    ]);
  });

  it('returns an unroutable mandatory message (312 NO_ROUTE) and still confirms it; nacks what a full queue refuses', async () => {
    const result = await onBoth('mandatory', async (s) => {
      const connection = await s.connect();
      const ch = await connection.channel();
      const [x, q] = [s.exchange('nowhere'), s.queue('somewhere')];
      await ch.assertExchange(x, 'direct', { durable: false });
      await ch.assertQueue(q, { durable: false });
      const returned: unknown[] = [];
      ch.on('return', (m: Message) =>
        returned.push({ fields: m.fields, body: m.content.toString(), headers: m.properties.headers }),
      );
      const confirms: string[] = [];
      const confirm = (label: string) => (err: unknown) => confirms.push(`${label}:${err ? 'nack' : 'ack'}`);
      ch.publish(x, 'no-binding', Buffer.from('to exchange'), { mandatory: true, headers: { h: 1 } }, confirm('1'));
      ch.publish('', s.queue('missing'), Buffer.from('to missing queue'), { mandatory: true }, confirm('2'));
      ch.publish('', q, Buffer.from('routable'), { mandatory: true }, confirm('3'));
      ch.publish(x, 'no-binding', Buffer.from('not mandatory'), {}, confirm('4'));
      // A full queue with x-overflow reject-publish refuses the message: the confirm is a nack.
      const full = s.queue('full');
      await ch.assertQueue(full, { durable: false, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
      ch.sendToQueue(full, Buffer.from('fits'), {}, confirm('5'));
      ch.sendToQueue(full, Buffer.from('refused'), {}, confirm('6'));
      const waited = await outcome(ch.waitForConfirms());
      // The same through amqp-connection-manager's wrapper, as Warren's RPC client publishes.
      const wrapper = connection.manager.createChannel({ confirm: true });
      const viaWrapper = await wrapper.publish(x, 'no-binding', Buffer.from('wrapper'), { mandatory: true });
      await wrapper.close();
      // Confirms of routed and unroutable messages may come in any order (RabbitMQ confirms
      // unroutable ones at once, routed ones once their queue has them): compared as a set.
      return {
        returned,
        confirms: confirms.sort(),
        waited,
        viaWrapper,
        delivered: await drain(ch, q),
        full: await drain(ch, full),
      };
    });
    expect(result.memory).toEqual(result.rabbitmq);
    const prefix = `conformance.${RUN}.mandatory`;
    expect(result.rabbitmq).toEqual({
      returned: [
        {
          fields: { replyCode: 312, replyText: 'NO_ROUTE', exchange: `${prefix}.nowhere`, routingKey: 'no-binding' },
          body: 'to exchange',
          headers: { h: 1 },
        },
        {
          fields: { replyCode: 312, replyText: 'NO_ROUTE', exchange: '', routingKey: `${prefix}.missing` },
          body: 'to missing queue',
          headers: {},
        },
      ],
      confirms: ['1:ack', '2:ack', '3:ack', '4:ack', '5:ack', '6:nack'],
      waited: { error: { name: 'Error', message: 'message nacked' } },
      viaWrapper: true,
      delivered: ['routable'],
      full: ['fits'],
    });
  });

  it('answers through direct reply-to (amq.rabbitmq.reply-to) on the calling channel, and refuses its misuse', async () => {
    const result = await onBoth('direct-reply-to', async (s) => {
      const [server, client] = [await s.connect('server'), await s.connect('client')];
      const sch = await server.channel(false);
      const q = s.queue('rpc');
      await sch.assertQueue(q, { durable: false });
      const requests: { replyTo: string; correlationId: string }[] = [];
      const returns: unknown[] = [];
      sch.on('return', (m: Message) =>
        returns.push({ replyCode: (m.fields as { replyCode?: number }).replyCode, body: m.content.toString() }),
      );
      await sch.consume(q, (m) => {
        if (!m) return;
        requests.push({ replyTo: m.properties.replyTo, correlationId: m.properties.correlationId });
        sch.sendToQueue(m.properties.replyTo, Buffer.from(`reply to ${m.content}`), {
          correlationId: m.properties.correlationId,
        });
        sch.ack(m);
      });
      const cch = await client.channel(false);
      const replies: ConsumeMessage[] = [];
      await cch.consume('amq.rabbitmq.reply-to', (m) => m && replies.push(m), { noAck: true });
      cch.sendToQueue(q, Buffer.from('ping'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: '42' });
      await waitUntil('the reply', () => replies.length === 1);
      const [reply] = replies;
      // A reply to an address no channel answers is unroutable: a mandatory one comes back.
      sch.sendToQueue(requests[0].replyTo.replace(/\.[^.]*$/, '.x'), Buffer.from('nobody'), { mandatory: true });
      await waitUntil('the return', () => returns.length === 1);
      // Misuse: an acking reply consumer; a request asking for replies without a reply consumer.
      const acking = await client.channel(false);
      const ackingEvents = watch(acking);
      const ackingConsume = await outcome(acking.consume('amq.rabbitmq.reply-to', () => undefined, { noAck: false }));
      const noConsumer = await client.channel(false);
      const noConsumerEvents = watch(noConsumer);
      noConsumer.sendToQueue(q, Buffer.from('no reply consumer'), { replyTo: 'amq.rabbitmq.reply-to' });
      await waitUntil('the channel closed', () => noConsumerEvents.includes('close'));
      return {
        request: {
          replyToIsAddress: requests[0].replyTo.startsWith('amq.rabbitmq.reply-to.'),
          correlationId: requests[0].correlationId,
        },
        reply: {
          body: reply.content.toString(),
          correlationId: reply.properties.correlationId,
          exchange: reply.fields.exchange,
          routingKeyIsTheReplyTo: reply.fields.routingKey === requests[0].replyTo,
          redelivered: reply.fields.redelivered,
        },
        requestsServed: requests.length,
        returns,
        ackingConsume,
        ackingEvents,
        noConsumerEvents,
      };
    });
    expect(result.memory).toEqual(result.rabbitmq);
    expect(result.rabbitmq).toEqual({
      request: { replyToIsAddress: true, correlationId: '42' },
      reply: {
        body: 'reply to ping',
        correlationId: '42',
        exchange: '',
        routingKeyIsTheReplyTo: true,
        redelivered: false,
      },
      requestsServed: 1,
      returns: [{ replyCode: 312, body: 'nobody' }],
      ackingConsume: {
        error: {
          code: 406,
          message:
            'Operation failed: BasicConsume; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - reply consumer cannot acknowledge"',
        },
      },
      ackingEvents: [
        'error 406: Channel closed by server: 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - reply consumer cannot acknowledge"',
        'close',
      ],
      noConsumerEvents: [
        'error 406: Channel closed by server: 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - fast reply consumer does not exist"',
        'close',
      ],
    });
  });

  it('removes exclusive queues with their connection, auto-delete queues with their last consumer, unused ones after x-expires; requeues a closed connection’s unacked messages', async () => {
    const result = await onBoth('exclusive', async (s) => {
      const [owner, other] = [await s.connect('owner'), await s.connect('other')];
      const och = await owner.channel();
      const [exclusive, shared, auto] = [s.queue('exclusive'), s.queue('shared'), s.queue('auto')];
      await och.assertQueue(exclusive, { exclusive: true, durable: false });
      const serverNamed = (await och.assertQueue('', { exclusive: true, durable: false })).queue;
      await och.assertQueue(shared, { durable: false });
      och.sendToQueue(shared, Buffer.from('in flight'));
      await och.waitForConfirms();
      const held: ConsumeMessage[] = [];
      await och.consume(shared, (m) => m && held.push(m));
      await waitUntil('the delivery', () => held.length === 1);

      /** checkQueue on a fresh channel of `other`: its result or error. */
      const check = async (q: string) => {
        const ch = await other.channel();
        ch.on('error', () => undefined);
        return outcome(ch.checkQueue(q));
      };
      const locked = await check(exclusive);
      const pch = await other.channel();
      pch.sendToQueue(exclusive, Buffer.from('publishing to it is fine'));
      await pch.waitForConfirms();

      const aut = await other.channel();
      await aut.assertQueue(auto, { autoDelete: true, durable: false });
      const { consumerTag } = await aut.consume(auto, () => undefined);
      await aut.cancel(consumerTag);
      await waitUntil('the auto-delete queue gone', async () => 'error' in (await check(auto)));
      const expiring = s.queue('expiring');
      await aut.assertQueue(expiring, { durable: false, arguments: { 'x-expires': 50 } });
      // A passive declare is a use that renews the lease: poll more slowly than the queue expires.
      for (let polls = 0; !('error' in (await check(expiring))); polls++) {
        if (polls === 50) throw new Error('the unused queue did not expire');
        await new Promise((resolve) => setTimeout(resolve, 150));
      }

      await owner.close();
      await waitUntil('the exclusive queues gone', async () => 'error' in (await check(exclusive)));
      await waitUntil('the server-named queue gone', async () => 'error' in (await check(serverNamed)));
      const get = await other.channel();
      const back = await get.get(shared, { noAck: true });
      return {
        serverNamed: /^amq\.gen-[A-Za-z0-9_-]{22}$/.test(serverNamed),
        locked,
        afterClose: await check(exclusive),
        autoDeleted: await check(auto),
        expired: await check(expiring),
        requeued: back && { body: back.content.toString(), redelivered: back.fields.redelivered },
      };
    });
    expect(result.memory).toEqual(result.rabbitmq);
    const prefix = `conformance.${RUN}.exclusive`;
    expect(result.rabbitmq).toEqual({
      serverNamed: true,
      locked: {
        error: {
          code: 405,
          message:
            `Operation failed: QueueDeclare; 405 (RESOURCE-LOCKED) with message "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${prefix}.exclusive' in vhost '/'. ` +
            'It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."',
        },
      },
      afterClose: {
        error: {
          code: 404,
          message: `Operation failed: QueueDeclare; 404 (NOT-FOUND) with message "NOT_FOUND - no queue '${prefix}.exclusive' in vhost '/'"`,
        },
      },
      autoDeleted: {
        error: {
          code: 404,
          message: `Operation failed: QueueDeclare; 404 (NOT-FOUND) with message "NOT_FOUND - no queue '${prefix}.auto' in vhost '/'"`,
        },
      },
      expired: {
        error: {
          code: 404,
          message: `Operation failed: QueueDeclare; 404 (NOT-FOUND) with message "NOT_FOUND - no queue '${prefix}.expiring' in vhost '/'"`,
        },
      },
      requeued: { body: 'in flight', redelivered: true },
    });
  });

  it('refuses a re-declaration with other settings (406 PRECONDITION_FAILED) and closes the channel', async () => {
    const result = await onBoth('precondition', async (s) => {
      const connection = await s.connect();
      const ch = await connection.channel();
      const [q, ttlQ, x] = [s.queue('q'), s.queue('ttl'), s.exchange('x')];
      await ch.assertQueue(q, { durable: false });
      await ch.assertQueue(ttlQ, { durable: false, arguments: { 'x-message-ttl': 1000 } });
      await ch.assertExchange(x, 'topic', { durable: false });
      // The same declaration again is fine.
      const again = await ch.assertQueue(q, { durable: false });
      const attempt = async (op: (c: ConfirmChannel) => Promise<unknown>) => {
        const c = await connection.channel();
        const events = watch(c);
        const result = await outcome(op(c));
        await waitUntil('the channel closed', () => events.includes('close'));
        const after = await outcome(c.checkQueue(q));
        return { result, events, after };
      };
      return {
        again,
        durable: await attempt((c) => c.assertQueue(q, { durable: true })),
        ttl: await attempt((c) => c.assertQueue(ttlQ, { durable: false, arguments: { 'x-message-ttl': 2000 } })),
        noTtl: await attempt((c) => c.assertQueue(ttlQ, { durable: false })),
        type: await attempt((c) => c.assertExchange(x, 'fanout', { durable: false })),
        exchangeDurable: await attempt((c) => c.assertExchange(x, 'topic', { durable: true })),
      };
    });
    expect(result.memory).toEqual(result.rabbitmq);
    const prefix = `conformance.${RUN}.precondition`;
    const refused = (method: string, text: string) => ({
      result: {
        error: { code: 406, message: `Operation failed: ${method}; 406 (PRECONDITION-FAILED) with message "${text}"` },
      },
      events: [`error 406: Channel closed by server: 406 (PRECONDITION-FAILED) with message "${text}"`, 'close'],
      after: { error: { name: 'IllegalOperationError', message: 'Channel closed' } },
    });
    const q = `queue '${prefix}.q' in vhost '/'`;
    const ttlQ = `queue '${prefix}.ttl' in vhost '/'`;
    const x = `exchange '${prefix}.x' in vhost '/'`;
    expect(result.rabbitmq).toEqual({
      again: { queue: `${prefix}.q`, messageCount: 0, consumerCount: 0 },
      durable: refused(
        'QueueDeclare',
        `PRECONDITION_FAILED - inequivalent arg 'durable' for ${q}: received 'true' but current is 'false'`,
      ),
      ttl: refused(
        'QueueDeclare',
        `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for ${ttlQ}: received '2000' but current is '1000'`,
      ),
      noTtl: refused(
        'QueueDeclare',
        `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for ${ttlQ}: received none but current is the value '1000' of type 'short'`,
      ),
      type: refused(
        'ExchangeDeclare',
        `PRECONDITION_FAILED - inequivalent arg 'type' for ${x}: received 'fanout' but current is 'topic'`,
      ),
      exchangeDurable: refused(
        'ExchangeDeclare',
        `PRECONDITION_FAILED - inequivalent arg 'durable' for ${x}: received 'true' but current is 'false'`,
      ),
    });
  });

  it('closes the channel on other refusals: unknown exchange, unknown delivery tag, missing queue, queue in use', async () => {
    const result = await onBoth('refusals', async (s) => {
      const connection = await s.connect();
      const q = s.queue('q');
      const setup = await connection.channel();
      await setup.assertQueue(q, { durable: false });
      const closed = async (act: (c: ConfirmChannel) => unknown) => {
        const c = await connection.channel(false);
        const events = watch(c);
        const result = await outcome(Promise.resolve().then(() => act(c)));
        await waitUntil('the channel closed', () => events.includes('close'));
        return { result, events };
      };
      return {
        publishToMissingExchange: await closed((c) => c.publish(s.exchange('missing'), 'k', Buffer.from('x'))),
        doubleAck: await closed(async (c) => {
          c.sendToQueue(q, Buffer.from('once'));
          const msg = await new Promise<ConsumeMessage>((resolve) => {
            void c.consume(q, (m) => m && resolve(m));
          });
          c.ack(msg);
          c.ack(msg);
          return 'acked twice';
        }),
        bindMissingQueue: await closed((c) => c.bindQueue(s.queue('absent'), 'amq.topic', '#')),
        consumeMissingQueue: await closed((c) => c.consume(s.queue('absent'), () => undefined)),
        deleteInUse: await closed(async (c) => {
          await c.consume(q, () => undefined);
          return c.deleteQueue(q, { ifUnused: true });
        }),
      };
    });
    expect(result.memory).toEqual(result.rabbitmq);
    const prefix = `conformance.${RUN}.refusals`;
    const closedBy = (text: string, code: number, name: string) =>
      `error ${code}: Channel closed by server: ${code} (${name}) with message "${text}"`;
    const notFound = (what: string) => `NOT_FOUND - no ${what} in vhost '/'`;
    expect(result.rabbitmq).toEqual({
      publishToMissingExchange: {
        result: { ok: true },
        events: [closedBy(notFound(`exchange '${prefix}.missing'`), 404, 'NOT-FOUND'), 'close'],
      },
      doubleAck: {
        result: { ok: 'acked twice' },
        events: [closedBy('PRECONDITION_FAILED - unknown delivery tag 1', 406, 'PRECONDITION-FAILED'), 'close'],
      },
      bindMissingQueue: {
        result: {
          error: {
            code: 404,
            message: `Operation failed: QueueBind; 404 (NOT-FOUND) with message "${notFound(`queue '${prefix}.absent'`)}"`,
          },
        },
        events: [closedBy(notFound(`queue '${prefix}.absent'`), 404, 'NOT-FOUND'), 'close'],
      },
      consumeMissingQueue: {
        result: {
          error: {
            code: 404,
            message: `Operation failed: BasicConsume; 404 (NOT-FOUND) with message "${notFound(`queue '${prefix}.absent'`)}"`,
          },
        },
        events: [closedBy(notFound(`queue '${prefix}.absent'`), 404, 'NOT-FOUND'), 'close'],
      },
      deleteInUse: {
        result: {
          error: {
            code: 406,
            message: `Operation failed: QueueDelete; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - queue '${prefix}.q' in vhost '/' in use"`,
          },
        },
        events: [
          closedBy(`PRECONDITION_FAILED - queue '${prefix}.q' in vhost '/' in use`, 406, 'PRECONDITION-FAILED'),
          'close',
        ],
      },
    });
  });

  it('delivers a message’s properties and headers as published', async () => {
    const result = await onBoth('properties', async (s) => {
      const ch = await (await s.connect()).channel();
      const q = s.queue('props');
      await ch.assertQueue(q, { durable: false });
      ch.sendToQueue(q, Buffer.from('all of them'), {
        contentType: 'text/plain',
        contentEncoding: 'utf-8',
        headers: {
          int: 1,
          big: 100_000,
          float: 1.5,
          text: 'x',
          yes: true,
          nothing: null,
          list: [1, 'a'],
          table: { n: 1 },
        },
        persistent: true,
        priority: 3,
        correlationId: 'c',
        replyTo: 'r',
        expiration: '60000',
        messageId: 'm',
        timestamp: 1_700_000_000,
        type: 't',
        userId: 'guest',
        appId: 'app',
        CC: 'cc',
        BCC: ['bcc'],
      });
      ch.sendToQueue(q, Buffer.alloc(0));
      await ch.waitForConfirms();
      const out: unknown[] = [];
      for (;;) {
        const m = await ch.get(q, { noAck: true });
        if (!m) break;
        out.push({ fields: m.fields, properties: definedOnly(m.properties), body: m.content.toString() });
      }
      return out;
    });
    expect(result.memory).toEqual(result.rabbitmq);
    const q = `conformance.${RUN}.properties.props`;
    expect(result.rabbitmq).toEqual([
      {
        fields: { deliveryTag: 1, redelivered: false, exchange: '', routingKey: q, messageCount: 1 },
        properties: {
          contentType: 'text/plain',
          contentEncoding: 'utf-8',
          // BCC routes but is never delivered; CC is.
          headers: {
            int: 1,
            big: 100_000,
            float: 1.5,
            text: 'x',
            yes: true,
            nothing: null,
            list: [1, 'a'],
            table: { n: 1 },
            CC: ['cc'],
          },
          deliveryMode: 2,
          priority: 3,
          correlationId: 'c',
          replyTo: 'r',
          expiration: '60000',
          messageId: 'm',
          timestamp: 1_700_000_000,
          type: 't',
          userId: 'guest',
          appId: 'app',
        },
        body: 'all of them',
      },
      {
        fields: { deliveryTag: 2, redelivered: false, exchange: '', routingKey: q, messageCount: 0 },
        properties: { headers: {} },
        body: '',
      },
    ]);
  });
});

describe('where the in-memory broker differs from RabbitMQ, on purpose', () => {
  it('refuses a stream (x-queue-type stream) with a clear refusal, where RabbitMQ declares one', async () => {
    const result = await onBoth('stream', async (s) => {
      const connection = await s.connect();
      const ch = await connection.channel();
      ch.on('error', () => undefined);
      return outcome(ch.assertQueue(s.queue('log'), { durable: true, arguments: { 'x-queue-type': 'stream' } }));
    });
    const name = `conformance.${RUN}.stream.log`;
    expect(result.rabbitmq).toEqual({ ok: { queue: name, messageCount: 0, consumerCount: 0 } });
    const text =
      `PRECONDITION_FAILED - the in-memory broker has no streams (x-queue-type 'stream' for queue '${name}' in vhost '/'): ` +
      'test stream consumers against RabbitMQ';
    expect(result.memory).toEqual({
      error: { code: 406, message: `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "${text}"` },
    });
  });
});

function definedOnly(properties: MessageProperties): Record<string, unknown> {
  return Object.fromEntries(Object.entries(properties).filter(([, v]) => v !== undefined));
}

/** A dead letter, reduced to what RabbitMQ promises (x-death's `time` only checked for its type). */
function describeDeadLetter(m: Message) {
  const { 'x-death': deaths, ...headers } = m.properties.headers ?? {};
  return {
    body: m.content.toString(),
    exchange: m.fields.exchange,
    routingKey: m.fields.routingKey,
    expiration: m.properties.expiration,
    headers,
    deaths: (deaths as unknown as Record<string, unknown>[]).map(({ time, ...death }) =>
      time === undefined ? death : { ...death, timeIsTimestamp: (time as { '!'?: string })['!'] === 'timestamp' },
    ),
  };
}

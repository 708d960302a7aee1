import type { ConfirmChannel } from 'amqplib';
import { brokerUrls, createConnectionManager, transportFor } from '../connection/connection-factory.js';
import { memoryBroker } from './broker.js';
import { isMemoryUrl, MemoryConnectionManager, parseMemoryUrl } from './connection-manager.js';
import { memoryTransport } from './memory-transport.js';

describe('memory:// URLs', () => {
  it.each([
    ['memory://', { broker: '', user: 'guest' }],
    ['memory://orders', { broker: 'orders', user: 'guest' }],
    ['MEMORY://orders/vhost?x=1', { broker: 'orders', user: 'guest' }],
    ['memory://alice:secret@orders', { broker: 'orders', user: 'alice' }],
    ['memory://a%20b', { broker: 'a b', user: 'guest' }],
  ])('%s names broker and user', (url, expected) => {
    expect(isMemoryUrl(url)).toBe(true);
    expect(parseMemoryUrl(url)).toEqual(expected);
  });

  it('is told apart from amqp:// URLs', () => {
    expect(isMemoryUrl('amqp://localhost')).toBe(false);
    expect(isMemoryUrl(undefined)).toBe(false);
  });

  it('is accepted by WarrenModule, alone, and described without a port', async () => {
    expect(brokerUrls({ url: 'memory://x' })).toEqual(['memory://x']);
    await expect(transportFor(['memory://x'])).resolves.toBe(memoryTransport);
    await expect(transportFor(brokerUrls({ urls: ['memory://x', 'amqp://localhost'] }))).rejects.toThrow(
      'a memory:// URL cannot be mixed with amqp:// URLs',
    );
    expect(() => brokerUrls({ url: 'memry://x' })).toThrow('must start with amqp://, amqps:// or memory://');
    expect(memoryTransport.describeUrl('memory://user:pw@orders')).toBe('memory://orders');
  });

  it('makes the connection factory return the in-memory manager, which connects to the named broker', async () => {
    const manager = await createConnectionManager(['memory://factory-test'], {
      connectionOptions: { clientProperties: { connection_name: 'unit' } },
    });
    expect(manager).toBeInstanceOf(MemoryConnectionManager);
    await manager.connect({ timeout: 1000 });
    expect(manager.isConnected()).toBe(true);
    expect(memoryBroker('factory-test').connectionNames()).toEqual(['unit']);
    await manager.close();
    expect(manager.isConnected()).toBe(false);
    expect(memoryBroker('factory-test').connectionNames()).toEqual([]);
  });
});

describe('the in-memory broker’s delivery', () => {
  it('never calls a consumer from inside publish(): deliveries come on a later turn, in order', async () => {
    const manager = await createConnectionManager(['memory://reentrancy'], {});
    await manager.connect();
    try {
      const channel = await new Promise<ConfirmChannel>((resolve) => {
        manager.createChannel({ setup: async (c: ConfirmChannel) => resolve(c) });
      });
      await channel.assertQueue('q', { durable: false });
      const events: string[] = [];
      const delivered = new Promise<void>((resolve) => {
        void channel.consume(
          'q',
          (msg) => {
            events.push(`delivered ${msg?.content.toString()}`);
            if (msg?.content.toString() === '2') resolve();
          },
          { noAck: true },
        );
      });
      // The consumer is registered once consume-ok has arrived; publish after that, as a client would.
      await new Promise((resolve) => setImmediate(resolve));
      events.push('publishing');
      channel.publish('', 'q', Buffer.from('1'));
      channel.publish('', 'q', Buffer.from('2'));
      events.push('published');
      await delivered;
      expect(events).toEqual(['publishing', 'published', 'delivered 1', 'delivered 2']);
    } finally {
      await manager.close();
    }
  });
});

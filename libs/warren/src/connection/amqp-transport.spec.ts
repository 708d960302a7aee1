import { amqpTransport } from './amqp-transport.js';
import { transportFor } from './connection-factory.js';

describe('the amqp:// transport', () => {
  it('names a broker by host, port and vhost only', () => {
    expect(amqpTransport.describeUrl('amqp://app:s3cr3t@mq.local/prod')).toBe('amqp://mq.local:5672/prod');
    expect(amqpTransport.describeUrl('amqps://app:s3cr3t@mq.local:5999')).toBe('amqps://mq.local:5999/');
  });

  it('serves amqp:// and amqps:// URLs together (brokers to fail over between), and no others', async () => {
    await expect(transportFor(['amqp://a', 'AMQPS://b'])).resolves.toBe(amqpTransport);
    await expect(transportFor(['amqp://localhost', 'memory://x'])).rejects.toThrow(
      'WarrenModule: a memory:// URL cannot be mixed with amqp:// URLs',
    );
  });
});

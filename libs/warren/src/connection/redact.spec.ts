import { brokerUrls } from './connection-factory.js';
import { redactCredentials } from './redact.js';

describe('credential redaction', () => {
  it('hides the password of every amqp URL in a text', () => {
    expect(redactCredentials('cannot reach amqp://app:s3cr3t@mq.local:5672/prod or amqps://x:y%40z@h')).toBe(
      'cannot reach amqp://app:***@mq.local:5672/prod or amqps://x:***@h',
    );
  });

  it('hides it whatever the scheme, a mistyped one included', () => {
    expect(redactCredentials('memory://alice:s3cr3t@orders, amqq://app:s3cr3t@mq')).toBe(
      'memory://alice:***@orders, amqq://app:***@mq',
    );
    expect(() => brokerUrls({ url: 'amqq://app:s3cr3t@mq.local' })).toThrow(
      'WarrenModule: broker URL "amqq://app:***@mq.local" must start with amqp://, amqps:// or memory://',
    );
  });
});

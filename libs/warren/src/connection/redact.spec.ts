import { describeBroker, redactCredentials } from './redact.js';

describe('credential redaction', () => {
  it('hides the password of every amqp URL in a text', () => {
    expect(redactCredentials('cannot reach amqp://app:s3cr3t@mq.local:5672/prod or amqps://x:y%40z@h')).toBe(
      'cannot reach amqp://app:***@mq.local:5672/prod or amqps://x:***@h',
    );
  });

  it('names a broker by host, port and vhost only', () => {
    expect(describeBroker('amqp://app:s3cr3t@mq.local/prod')).toBe('amqp://mq.local:5672/prod');
    expect(describeBroker('amqps://app:s3cr3t@mq.local:5999')).toBe('amqps://mq.local:5999/');
  });
});

import { redactCredentials } from './redact.js';

describe('credential redaction', () => {
  it('hides the password of every amqp URL in a text', () => {
    expect(redactCredentials('cannot reach amqp://app:s3cr3t@mq.local:5672/prod or amqps://x:y%40z@h')).toBe(
      'cannot reach amqp://app:***@mq.local:5672/prod or amqps://x:***@h',
    );
  });
});

import { amqpTransport } from './amqp-transport.js';
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
    for (const scheme of ['ampq', 'http', 'https', 'AMQP', 'rabbitmq+tls', 'x-y.z']) {
      expect(redactCredentials(`${scheme}://app:s3cr3t@mq`)).toBe(`${scheme}://app:***@mq`);
    }
  });

  it.each([
    ['a / in the password', 'amqp://app:pa/ss@mq.local:5672/vhost', 'amqp://app:***@mq.local:5672/vhost'],
    ['a port-like start and a /', 'amqp://app:12/ss@mq/v', 'amqp://app:***@mq/v'],
    ['an unencoded @', 'amqp://app:p@ss@mq', 'amqp://app:***@mq'],
    ['a # and a ?', 'amqp://app:p#a?ss@mq/v?heartbeat=5', 'amqp://app:***@mq/v?heartbeat=5'],
    ['a : in the password', 'amqp://app:a:b:c@mq', 'amqp://app:***@mq'],
    ['an empty user', 'amqp://:s3cr3t@mq', 'amqp://:***@mq'],
    ['an IPv6 host', 'amqp://app:s3cr3t@[::1]:5672', 'amqp://app:***@[::1]:5672'],
    ['in quotes', 'URL "amqp://app:s3cr3t@mq" is bad', 'URL "amqp://app:***@mq" is bad'],
    ['two joined by a comma', 'amqp://a:one@h1,amqp://b:two@h2', 'amqp://a:***@h1,amqp://b:***@h2'],
    ['at the end of a sentence', 'failed: amqp://app:s3cr3t@mq.', 'failed: amqp://app:***@mq.'],
  ])('hides a password with %s', (_, text, redacted) => {
    expect(redactCredentials(text)).toBe(redacted);
  });

  it('leaves URLs without a password as they are', () => {
    for (const text of ['amqp://mq.local:5672/v', 'amqp://user@mq', 'http://host:8080/path', 'no url here: a:b@c']) {
      expect(redactCredentials(text)).toBe(text);
    }
  });

  it('describes a URL a parser misreads (a / in the password) without any of the password', () => {
    for (const url of ['amqp://app:12/secret@mq.local', 'amqp://app:pa/ss@mq.local', 'amqp://app:pa?ss@mq']) {
      const described = amqpTransport.describeUrl(url);
      expect(described).not.toMatch(/secret|ss@|pa\/|pa\?|:12/);
    }
    expect(amqpTransport.describeUrl('amqp://app:s3cr3t@mq.local/prod')).toBe('amqp://mq.local:5672/prod');
  });

  it('refuses such a URL at boot, before any of the password can reach a DNS lookup or an error', () => {
    expect(() => brokerUrls({ url: 'amqp://app:12/secret@mq.local:5672' })).toThrow(
      `WarrenModule: broker URL "amqp://***@mq.local:5672" has an '@' after its host: percent-encode a '/', '?' or '#' in the user name or password (encodeURIComponent)`,
    );
    expect(brokerUrls({ url: `amqp://app:${encodeURIComponent('12/secret')}@mq.local` })).toHaveLength(1);
  });
});

import { createTestCertificates, type TestCertificates } from '../testing/test-certificates.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import type { WarrenModuleOptions } from '../warren.options.js';
import { socketSecurity } from './tls-options.js';

const PASSPHRASE = 'PASS-MARKER-7d1f';
const TLS_URL = 'amqps://app:URL-SECRET@mq.local:5671';

let certs: TestCertificates;
let other: TestCertificates;
beforeAll(async () => {
  certs = await createTestCertificates({ passphrase: PASSPHRASE });
  other = await createTestCertificates();
});

function check(options: Partial<WarrenModuleOptions>, urls: string[] = [TLS_URL]) {
  return socketSecurity({ url: urls[0], ...options }, urls, 'WarrenModule');
}

/** The error `run` throws, asserted to be a configuration error that quotes no secret. */
function refusal(run: () => unknown): string {
  let thrown: unknown;
  try {
    run();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(WarrenConfigurationError);
  const message = (thrown as Error).message;
  for (const secret of [PASSPHRASE, 'URL-SECRET', certs.client.key.split('\n')[1], certs.client.cert.split('\n')[1]]) {
    expect(message).not.toContain(secret);
  }
  return message;
}

describe('socketSecurity: the tls and auth options', () => {
  it('adds nothing without tls', () => {
    expect(check({}, ['amqp://127.0.0.1'])).toEqual({ socketOptions: {}, warnings: [] });
  });

  it('passes the CA, the client certificate, its key and passphrase to the socket, checking the broker', () => {
    const tls = { ca: certs.ca, cert: certs.client.cert, key: certs.client.key, passphrase: PASSPHRASE };
    expect(check({ tls: { ...tls, servername: 'mq.local' } })).toEqual({
      socketOptions: { ...tls, servername: 'mq.local', rejectUnauthorized: true },
      warnings: [],
    });
    expect(check({ tls: { ca: [Buffer.from(certs.ca), other.ca] } }).socketOptions.ca).toHaveLength(2);
  });

  it('refuses tls with a plain amqp:// URL, among failover URLs too, naming it without credentials', () => {
    expect(refusal(() => check({ tls: { ca: certs.ca } }, ['amqp://app:URL-SECRET@mq.local:5672']))).toBe(
      "WarrenModule: tls is set but a broker URL is amqp:// (amqp://mq.local:5672): use amqps:// (RabbitMQ's TLS listener, port 5671 by default), or drop tls",
    );
    expect(refusal(() => check({ tls: {} }, [TLS_URL, 'amqp://app:URL-SECRET@mq2.local']))).toContain(
      'a broker URL is amqp:// (amqp://mq2.local)',
    );
  });

  it('refuses an option tls does not have, a certificate without its key and a passphrase without a key', () => {
    expect(refusal(() => check({ tls: { ca: certs.ca, rejectUnauthorised: false } as never }))).toBe(
      'WarrenModule: tls has no option "rejectUnauthorised" (it takes ca, cert, key, passphrase, servername, rejectUnauthorized)',
    );
    expect(refusal(() => check({ tls: { cert: certs.client.cert } }))).toBe(
      'WarrenModule: tls.cert is set without tls.key: a client certificate needs both',
    );
    expect(refusal(() => check({ tls: { key: certs.client.key, passphrase: PASSPHRASE } }))).toContain(
      'tls.key is set without tls.cert',
    );
    expect(refusal(() => check({ tls: { passphrase: PASSPHRASE } }))).toBe(
      'WarrenModule: tls.passphrase is set without tls.key',
    );
    expect(refusal(() => check({ tls: { rejectUnauthorized: 'no' as never } }))).toContain(
      'tls.rejectUnauthorized must be true or false',
    );
  });

  it('refuses a file path where PEM text belongs', () => {
    expect(refusal(() => check({ tls: { ca: '/etc/ssl/ca.pem' } }))).toBe(
      'WarrenModule: tls.ca is not PEM text (no "-----BEGIN" line): give the file\'s contents (readFileSync(path)), not its path',
    );
    expect(refusal(() => check({ tls: { ca: 42 as never } }))).toContain('tls.ca must be PEM text or a Buffer');
  });

  it('opens the key at boot: a wrong passphrase, none, or a key of another certificate fail by name', () => {
    const client = { cert: certs.client.cert, key: certs.client.key };
    expect(refusal(() => check({ tls: { ...client, passphrase: 'not-it' } }))).toMatch(
      /^WarrenModule: tls\.cert with tls\.key and tls\.passphrase cannot be used: .*bad decrypt/,
    );
    expect(refusal(() => check({ tls: client }))).toMatch(/^WarrenModule: tls\.cert with tls\.key cannot be used: /);
    expect(refusal(() => check({ tls: { cert: certs.client.cert, key: other.client.key } }))).toMatch(
      /tls\.cert with tls\.key cannot be used: .*key values mismatch/,
    );
    expect(
      refusal(() => check({ tls: { ca: '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----' } })),
    ).toMatch(/^WarrenModule: tls\.ca cannot be used: /);
  });

  it("logs in with EXTERNAL when auth is 'external', which needs a client certificate", () => {
    const tls = { ca: certs.ca, cert: certs.client.cert, key: certs.client.key, passphrase: PASSPHRASE };
    const credentials = check({ tls, auth: 'external' }).socketOptions.credentials as {
      mechanism: string;
      response(): Buffer;
    };
    expect(credentials.mechanism).toBe('EXTERNAL');
    expect(credentials.response()).toEqual(Buffer.from(''));
    expect(refusal(() => check({ auth: 'external' }))).toContain(
      "auth 'external' logs in as the client certificate's identity",
    );
    expect(refusal(() => check({ tls: { ca: certs.ca }, auth: 'external' }))).toContain('give tls.cert and tls.key');
    expect(refusal(() => check({ auth: 'EXTERNAL' as never }))).toBe(
      "WarrenModule: auth must be 'plain' or 'external'",
    );
  });

  it('warns when the broker certificate is not checked', () => {
    expect(check({ tls: { rejectUnauthorized: false } })).toEqual({
      socketOptions: { rejectUnauthorized: false },
      warnings: [expect.stringContaining("tls.rejectUnauthorized is false: the broker's certificate is not checked")],
    });
  });
});

import { Injectable, type INestApplicationContext } from '@nestjs/common';
import {
  describeTopology,
  RpcClient,
  RpcHandler,
  WarrenConnectionError,
  WarrenHealthIndicator,
  type WarrenModuleOptions,
  type WarrenTlsOptions,
} from 'nestjs-warren';
import {
  createTestCertificates,
  freePort,
  startRabbitMQ,
  type RabbitMQ,
  type TestCertificates,
} from 'nestjs-warren/testing';
import { bootApp } from './support/app.js';
import { unique } from './support/broker.js';
import { capturedLogs } from './support/logs.js';

// One private node with a TLS listener for the whole suite: mutual TLS (a client certificate is
// required), and EXTERNAL auth offered beside PLAIN.

const PASSPHRASE = 'PASSPHRASE-MARKER-3c9e';
const KEY_MARKER = 'KEY-MARKER-51ab';
/** The RabbitMQ user the client certificate's common name names: it has no password. */
const CERT_USER = unique('warren-tls-client');
const RPC = unique('e2e.tls.rpc');

let broker: RabbitMQ;
let certs: TestCertificates;
let wrongCa: TestCertificates;
/** The client's TLS options: its key carries a marker line (PEM's explanatory text) and a passphrase. */
let clientTls: WarrenTlsOptions;
/** Texts that must never reach a log line or an error. */
let secrets: string[];

async function nodeApi<T>(path: string, init: RequestInit = {}): Promise<T> {
  const base = new URL(broker.managementUrl!);
  const response = await fetch(`http://${base.host}${path}`, {
    ...init,
    headers: {
      authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}`,
      'content-type': 'application/json',
    },
  });
  if (!response.ok) throw new Error(`management API ${path}: ${response.status} ${await response.text()}`);
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

interface BrokerConnection {
  user: string;
  ssl: boolean;
  auth_mechanism: string;
  peer_cert_subject?: string;
  client_properties?: { connection_name?: string };
}

/** The broker's view of the app's connections, by their client-provided name. */
async function brokerConnections(name: string): Promise<BrokerConnection[]> {
  // The management API's connection list lags a few seconds behind: wait for both.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const all = await nodeApi<BrokerConnection[]>('/api/connections');
    const ours = all.filter((c) => c.client_properties?.connection_name?.startsWith(`${name}:`));
    if (ours.length === 2 || Date.now() > deadline) return ours;
    await new Promise((r) => setTimeout(r, 250));
  }
}

function expectNoSecrets(texts: readonly string[]): void {
  for (const text of texts) for (const secret of secrets) expect(text).not.toContain(secret);
}

const everyLogLine = () => capturedLogs().map((line) => line.text);

@Injectable()
class Echo {
  @RpcHandler(RPC, { durable: false })
  echo(payload: { n: number }) {
    return { n: payload.n, doubled: payload.n * 2 };
  }
}

/** Boots an app on the TLS node with `options`, runs a few RPC round trips, and checks what it shows. */
async function roundTrips(options: Partial<WarrenModuleOptions>): Promise<INestApplicationContext> {
  const app = await bootApp({ providers: [Echo] }, { connectTimeoutMs: 10_000, ...options });
  const rpc = app.get(RpcClient);
  for (let n = 1; n <= 3; n++) await expect(rpc.call(RPC, { n })).resolves.toEqual({ n, doubled: n * 2 });
  const health = app.get(WarrenHealthIndicator).readiness();
  expect(health.rabbitmq.status).toBe('up');
  expectNoSecrets([JSON.stringify(health), JSON.stringify(describeTopology(app))]);
  return app;
}

async function bootFailure(options: Partial<WarrenModuleOptions>): Promise<Error> {
  const err = await bootApp({ providers: [Echo] }, { connectTimeoutMs: 10_000, ...options }).then(
    () => new Error('the boot succeeded'),
    (e: Error) => e,
  );
  expect(err).toBeInstanceOf(WarrenConnectionError);
  expectNoSecrets([err.message, String(err.stack)]);
  return err;
}

beforeAll(async () => {
  certs = await createTestCertificates({ passphrase: PASSPHRASE, clientName: CERT_USER });
  wrongCa = await createTestCertificates();
  broker = await startRabbitMQ({ tls: { ca: certs.ca, ...certs.server, external: true } });
  await nodeApi(`/api/users/${encodeURIComponent(CERT_USER)}`, {
    method: 'PUT',
    body: JSON.stringify({ password_hash: '', tags: '' }),
  });
  await nodeApi(`/api/permissions/%2F/${encodeURIComponent(CERT_USER)}`, {
    method: 'PUT',
    body: JSON.stringify({ configure: '.*', write: '.*', read: '.*' }),
  });
  clientTls = {
    ca: certs.ca,
    cert: certs.client.cert,
    key: `${KEY_MARKER}\n${certs.client.key}`,
    passphrase: PASSPHRASE,
  };
  // The marker lines, and a line of each base64 body: none may show anywhere.
  secrets = [PASSPHRASE, KEY_MARKER, certs.client.key.split('\n')[1], certs.client.cert.split('\n')[1]];
}, 120_000);

afterAll(async () => {
  await broker?.stop();
});

afterEach(() => {
  expectNoSecrets(everyLogLine());
});

describe('TLS', () => {
  it('connects with mutual TLS and the URL user and password, failing over along amqps:// URLs', async () => {
    const name = unique('tls-plain');
    // Nothing listens on the first: the connections go on to the node.
    const nobody = `amqps://guest:guest@127.0.0.1:${await freePort()}`;
    const app = await roundTrips({
      urls: [nobody, broker.tlsUrl!],
      tls: clientTls,
      clientProvidedName: name,
      reconnectDelayMs: 100,
    });
    try {
      const port = new URL(broker.tlsUrl!).port;
      expect(app.get(WarrenHealthIndicator).readiness().rabbitmq.connections).toMatchObject({
        consume: { node: `amqps://127.0.0.1:${port}/` },
        publish: { node: `amqps://127.0.0.1:${port}/` },
      });
      const connections = await brokerConnections(name);
      expect(connections).toHaveLength(2);
      for (const c of connections) {
        expect(c).toMatchObject({ ssl: true, user: 'guest', auth_mechanism: 'PLAIN' });
        expect(c.peer_cert_subject).toContain(`CN=${CERT_USER}`);
      }
    } finally {
      await app.close();
    }
  });

  it("logs in as the client certificate's common name with auth 'external', no password in the URL", async () => {
    const name = unique('tls-external');
    const url = broker.tlsUrl!.replace('guest:guest@', '');
    const app = await roundTrips({ url, tls: clientTls, auth: 'external', clientProvidedName: name });
    try {
      const connections = await brokerConnections(name);
      expect(connections).toHaveLength(2);
      for (const c of connections) expect(c).toMatchObject({ ssl: true, user: CERT_USER, auth_mechanism: 'EXTERNAL' });
    } finally {
      await app.close();
    }
  });

  it('fails the boot at once, naming the connection and the TLS failure, when the broker certificate is of another CA', async () => {
    const err = await bootFailure({
      connection: 'secure',
      url: broker.tlsUrl,
      tls: { ...clientTls, ca: wrongCa.ca },
    });
    const port = new URL(broker.tlsUrl!).port;
    // "at boot": refused by the first attempt, not retried until the connect timeout.
    expect(err.message).toBe(
      `WarrenConnection "secure": Cannot connect to RabbitMQ at amqps://127.0.0.1:${port}/ at boot: ` +
        "TLS: the broker's certificate is not signed by a CA this app trusts (SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain): is tls.ca the CA that signed it?",
    );
  });

  it('fails the boot at once when the broker requires a client certificate and the app has none', async () => {
    const err = await bootFailure({ url: broker.tlsUrl, tls: { ca: certs.ca } });
    expect(err.message).toMatch(
      /^Cannot connect to RabbitMQ at amqps:\/\/127\.0\.0\.1:\d+\/ at boot: TLS: the broker requires a client certificate \(.*\): give tls\.cert and tls\.key$/,
    );
  });

  it('fails the boot at once when the broker refuses a client certificate signed by a CA it does not trust', async () => {
    const err = await bootFailure({ url: broker.tlsUrl, tls: { ca: certs.ca, ...wrongCa.client } });
    expect(err.message).toContain(
      'at boot: TLS: the broker refused the client certificate (ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
    );
  });

  it('fails the boot at once when the certificate names another host, or the port speaks no TLS', async () => {
    const elsewhere = await bootFailure({ url: broker.tlsUrl, tls: { ...clientTls, servername: 'mq.example' } });
    expect(elsewhere.message).toContain(
      "at boot: TLS: the broker's certificate is not for the host connected to (Hostname/IP does not match certificate's altnames: Host: mq.example.",
    );
    const plainPort = broker.url.replace('amqp://', 'amqps://');
    const plain = await bootFailure({ url: plainPort, tls: clientTls });
    expect(plain.message).toContain('at boot: TLS: the broker did not answer in TLS (ERR_SSL_WRONG_VERSION_NUMBER');
  });
});

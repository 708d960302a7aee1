import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A certificate and its private key, as PEM text. */
export interface TestKeyPair {
  cert: string;
  key: string;
}

export interface TestCertificates {
  /** The PEM of the CA that signed both certificates below. */
  ca: string;
  /** For the broker: valid for 127.0.0.1 and localhost. */
  server: TestKeyPair;
  /** For the client: its common name is `clientName`; its key is encrypted when `passphrase` was given. */
  client: TestKeyPair;
  /** The client certificate's common name: the RabbitMQ user it logs in as with EXTERNAL auth. */
  clientName: string;
  /** The client key's passphrase, when it has one. */
  passphrase?: string;
}

export interface TestCertificatesOptions {
  /** The client certificate's common name. Default `warren-client`. */
  clientName?: string;
  /** Encrypts the client's key with this passphrase. Default: not encrypted. */
  passphrase?: string;
  /** How long the certificates are valid, in days. Default 1: they are for one test run. */
  days?: number;
}

/**
 * A throwaway CA with a server and a client certificate signed by it, made with the `openssl`
 * command (Debian's `openssl` package) in a temp dir that is removed afterwards. EC P-256 keys:
 * making all three takes a few tens of milliseconds. Each call makes a new CA, so a second call
 * gives the certificates of a CA the first does not trust (a wrong-CA test).
 */
export async function createTestCertificates(options: TestCertificatesOptions = {}): Promise<TestCertificates> {
  const clientName = options.clientName ?? 'warren-client';
  // openssl's -subj reads '/', '=', '+' and a backslash as its own syntax.
  if (!/^[\w.@ -]+$/.test(clientName)) {
    throw new Error(
      `createTestCertificates: clientName "${clientName}" may hold letters, digits, '.', '-', '_', '@' and spaces only`,
    );
  }
  const days = String(options.days ?? 1);
  const dir = await mkdtemp(join(tmpdir(), 'warren-certs-'));
  const file = (name: string) => join(dir, name);
  const openssl = async (args: string[]) => {
    try {
      await run('openssl', args, { cwd: dir, timeout: 30_000 });
    } catch (err) {
      const { stderr, code } = err as { stderr?: string; code?: unknown };
      const why = code === 'ENOENT' ? 'openssl is not installed (apt-get install openssl)' : String(stderr).trim();
      throw new Error(`createTestCertificates: openssl ${args[0]} failed: ${why}`, { cause: err });
    }
  };
  const newKey = (name: string) =>
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file(name)]);
  const sign = async (name: string, subject: string, extensions: string[]) => {
    await writeFile(
      file(`${name}.ext`),
      [...extensions, 'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid'].join('\n') + '\n',
    );
    await openssl([
      'req',
      '-new',
      '-config',
      file('openssl.cnf'),
      '-key',
      file(`${name}.key`),
      '-subj',
      subject,
      '-out',
      file(`${name}.csr`),
    ]);
    await openssl([
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-days',
      days,
      '-sha256',
      '-extfile',
      file(`${name}.ext`),
      '-out',
      file(`${name}.pem`),
    ]);
  };
  try {
    // A config of our own: the system's openssl.cnf differs between distributions.
    await writeFile(
      file('openssl.cnf'),
      [
        '[req]',
        'distinguished_name = dn',
        'x509_extensions = ca',
        '[dn]',
        '[ca]',
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, keyCertSign, cRLSign',
        'subjectKeyIdentifier = hash',
        '',
      ].join('\n'),
    );
    await newKey('ca.key');
    await openssl([
      'req',
      '-x509',
      '-new',
      '-config',
      file('openssl.cnf'),
      '-key',
      file('ca.key'),
      '-subj',
      `/CN=Warren test CA ${process.pid}-${Date.now()}`,
      '-days',
      days,
      '-sha256',
      '-out',
      file('ca.pem'),
    ]);
    await newKey('server.key');
    await sign('server', '/CN=localhost', [
      'basicConstraints = CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = IP:127.0.0.1, DNS:localhost',
    ]);
    await newKey('client.key');
    await sign('client', `/CN=${clientName}`, [
      'basicConstraints = CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = clientAuth',
    ]);
    if (options.passphrase !== undefined) {
      // Through the environment, so the passphrase is in no process's arguments.
      await run(
        'openssl',
        [
          'pkcs8',
          '-topk8',
          '-v2',
          'aes-256-cbc',
          '-in',
          file('client.key'),
          '-out',
          file('client.enc.key'),
          '-passout',
          'env:WARREN_TEST_KEY_PASSPHRASE',
        ],
        { cwd: dir, timeout: 30_000, env: { ...process.env, WARREN_TEST_KEY_PASSPHRASE: options.passphrase } },
      ).catch((err: { stderr?: string }) => {
        throw new Error(`createTestCertificates: openssl pkcs8 failed: ${String(err.stderr).trim()}`, { cause: err });
      });
    }
    const read = (name: string) => readFile(file(name), 'utf8');
    return {
      ca: await read('ca.pem'),
      server: { cert: await read('server.pem'), key: await read('server.key') },
      client: {
        cert: await read('client.pem'),
        key: await read(options.passphrase !== undefined ? 'client.enc.key' : 'client.key'),
      },
      clientName,
      ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

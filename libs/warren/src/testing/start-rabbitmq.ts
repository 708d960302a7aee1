import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import amqplib from 'amqplib';
import { redactCredentials } from '../connection/redact.js';
import { freePort } from './free-port.js';

const run = promisify(execFile);

export interface RabbitMQ {
  /** AMQP URL of the broker. */
  url: string;
  /** Base URL of the management HTTP API with credentials, when the plugin is on. */
  managementUrl?: string;
  /** Where the broker came from. */
  source: 'env' | 'local' | 'docker';
  /**
   * The `amqps://` URL of the node's TLS listener, when it was started with `tls` (credentials
   * guest:guest; give the client its certificate and CA through Warren's `tls` option).
   */
  tlsUrl?: string;
  /** Erlang node name of a local broker (for `rabbitmqctl -n`). */
  nodeName?: string;
  /** Stops and removes a broker this call started; leaves an external one alone. */
  stop(): Promise<void>;
  /** Kills the broker process hard (local brokers only), for fault tests. */
  kill?(): Promise<void>;
  /** Starts a killed local broker again on the same ports and data. */
  restart?(): Promise<void>;
}

export interface StartRabbitMQOptions {
  /** Start the management plugin (HTTP API on 127.0.0.1). Default true. */
  management?: boolean;
  /** How long to wait for the broker to accept connections. Default 90 s. */
  timeoutMs?: number;
  /** Ignore RABBITMQ_URL and always start a private broker. */
  private?: boolean;
  /**
   * A TLS listener besides the plain one (a private local node then, whatever RABBITMQ_URL says):
   * see StartRabbitMQTlsOptions. `createTestCertificates()` makes what it needs.
   */
  tls?: StartRabbitMQTlsOptions;
  /**
   * Lines added to the node's `rabbitmq.conf` (`'max_message_size = 65536'`): a broker configured
   * for one test. Implies `private`; needs a local `rabbitmq-server` install (not Docker).
   */
  config?: string[];
}

/** The node's TLS listener: its certificate, and whom it trusts. PEM text or Buffers of it. */
export interface StartRabbitMQTlsOptions {
  /** The CA the node trusts for client certificates (and sends along with its own). */
  ca: string | Buffer;
  /** The node's certificate (for 127.0.0.1) and its unencrypted key. */
  cert: string | Buffer;
  key: string | Buffer;
  /**
   * Refuse a client without a certificate signed by `ca` (RabbitMQ's `verify_peer` with
   * `fail_if_no_peer_cert`). Default true: mutual TLS. False: a client certificate is checked when
   * one is sent, and none is needed.
   */
  requireClientCertificate?: boolean;
  /**
   * Offer the EXTERNAL mechanism (plugin `rabbitmq_auth_mechanism_ssl`): a client logs in as the
   * user its certificate's common name names (a user to create, with no password needed). Default
   * false.
   */
  external?: boolean;
}

const SERVER_CANDIDATES = [
  '/usr/lib/rabbitmq/bin/rabbitmq-server',
  '/usr/local/sbin/rabbitmq-server',
  '/opt/homebrew/sbin/rabbitmq-server',
];

/**
 * A real RabbitMQ for tests. Uses `RABBITMQ_URL` when set; otherwise starts a private node from a
 * local `rabbitmq-server` install (own temp dir, free loopback ports, unique node name) or, where
 * a Docker engine answers, a throwaway `rabbitmq` container. Throws, saying how to get a broker,
 * when none of these is possible: a test run never quietly skips the broker.
 */
export async function startRabbitMQ(options: StartRabbitMQOptions = {}): Promise<RabbitMQ> {
  const fromEnv = process.env.RABBITMQ_URL;
  if (fromEnv && !options.private && !options.tls && !options.config) {
    return {
      url: fromEnv,
      managementUrl: process.env.RABBITMQ_MANAGEMENT_URL,
      source: 'env',
      stop: async () => undefined,
    };
  }
  const server = await findServer();
  if (server) return startLocal(server, options);
  if (options.tls || options.config) {
    throw new Error(
      `startRabbitMQ({ ${options.tls ? 'tls' : 'config'} }) needs a local rabbitmq-server install (apt-get install rabbitmq-server): ` +
        'a TLS listener or rabbitmq.conf lines cannot be given to the Docker fallback',
    );
  }
  if (await dockerAnswers()) return startDocker(options);
  throw new Error(
    'No RabbitMQ broker for the tests: set RABBITMQ_URL to a running broker, install the Debian package ' +
      '`rabbitmq-server` (apt-get install rabbitmq-server), or run a Docker engine ' +
      '(docker run -p 5672:5672 -p 15672:15672 rabbitmq:3.13-management).',
  );
}

export async function findServer(): Promise<string | undefined> {
  const fromEnv = process.env.RABBITMQ_SERVER;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  return SERVER_CANDIDATES.find((p) => existsSync(p));
}

async function startLocal(server: string, options: StartRabbitMQOptions): Promise<RabbitMQ> {
  const management = options.management ?? true;
  await removeOrphans();
  // The owner's pid in the name lets a later run find and remove a node whose owner died.
  const dir = await mkdtemp(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  const [amqpPort, distPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const tlsPort = options.tls ? await freePort() : undefined;
  const nodeName = `warren-${process.pid}-${amqpPort}@localhost`;
  await mkdir(join(dir, 'log'), { recursive: true });
  const plugins = [
    ...(management ? ['rabbitmq_management'] : []),
    ...(options.tls?.external ? ['rabbitmq_auth_mechanism_ssl'] : []),
  ];
  await writeFile(join(dir, 'enabled_plugins'), `[${plugins.join(',')}].\n`);
  await writeFile(
    join(dir, 'rabbitmq.conf'),
    [
      `listeners.tcp.1 = 127.0.0.1:${amqpPort}`,
      ...(options.tls && tlsPort ? await tlsConfig(dir, tlsPort, options.tls) : []),
      `management.tcp.ip = 127.0.0.1`,
      `management.tcp.port = ${httpPort}`,
      // Fault tests restart the node quickly; don't wait for peers that do not exist.
      'cluster_formation.peer_discovery_backend = classic_config',
      'log.console = false',
      'log.file.level = warning',
      ...(options.config ?? []),
    ].join('\n') + '\n',
  );
  const loopbackOnly = '-kernel inet_dist_use_interface {127,0,0,1}';
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_LOGS: join(dir, 'log', 'node.log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: loopbackOnly,
    RABBITMQ_CTL_ERL_ARGS: loopbackOnly,
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };
  const url = `amqp://guest:guest@127.0.0.1:${amqpPort}`;
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn(server, [], { env, cwd: dir, detached: true, stdio: 'ignore' });
    child.unref();
    await waitForBroker(url, options.timeoutMs ?? 90_000, async () => {
      const log = await readFile(join(dir, 'log', 'node.log'), 'utf8').catch(() => '');
      return log.split('\n').slice(-15).join('\n');
    });
  };
  const killGroup = async (signal: NodeJS.Signals) => {
    const pid = child?.pid;
    if (!pid) return;
    try {
      process.kill(-pid, signal);
    } catch {
      return;
    }
    // Wait for the node to be gone, so a restart can take its ports and data.
    for (let i = 0; i < 300; i++) {
      try {
        process.kill(-pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await launch();
  return {
    url,
    ...(tlsPort ? { tlsUrl: `amqps://guest:guest@127.0.0.1:${tlsPort}` } : {}),
    managementUrl: management ? `http://guest:guest@127.0.0.1:${httpPort}` : undefined,
    source: 'local',
    nodeName,
    kill: () => killGroup('SIGKILL'),
    restart: launch,
    stop: async () => {
      await killGroup('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The config lines of a TLS listener on 127.0.0.1:`port`, its PEM files written into the node's
 * own dir (removed with it by `stop()`).
 */
async function tlsConfig(dir: string, port: number, tls: StartRabbitMQTlsOptions): Promise<string[]> {
  const files = { ca: join(dir, 'tls-ca.pem'), cert: join(dir, 'tls-cert.pem'), key: join(dir, 'tls-key.pem') };
  await writeFile(files.ca, tls.ca);
  await writeFile(files.cert, tls.cert);
  await writeFile(files.key, tls.key, { mode: 0o600 });
  const requireCert = tls.requireClientCertificate ?? true;
  return [
    `listeners.ssl.default = 127.0.0.1:${port}`,
    `ssl_options.cacertfile = ${files.ca}`,
    `ssl_options.certfile = ${files.cert}`,
    `ssl_options.keyfile = ${files.key}`,
    'ssl_options.verify = verify_peer',
    `ssl_options.fail_if_no_peer_cert = ${requireCert}`,
    ...(tls.external
      ? [
          'auth_mechanisms.1 = PLAIN',
          'auth_mechanisms.2 = AMQPLAIN',
          'auth_mechanisms.3 = EXTERNAL',
          'ssl_cert_login_from = common_name',
        ]
      : []),
  ];
}

const DIR_PREFIX = 'warren-rabbitmq-';

/**
 * Stops nodes left behind by test runs that were killed before their teardown (a jest run that
 * called process.exit, a CI job cancelled mid-way): their owner process is gone.
 */
async function removeOrphans(): Promise<void> {
  const entries = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const entry of entries) {
    const owner = Number(/^warren-rabbitmq-(\d+)-/.exec(entry)?.[1]);
    if (!owner || alive(owner)) continue;
    const dir = join(tmpdir(), entry);
    const pid = Number(await readFile(join(dir, 'rabbitmq.pid'), 'utf8').catch(() => ''));
    if (pid && alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForBroker(url: string, timeoutMs: number, diagnostics: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const connection = await amqplib.connect(url);
      await connection.close();
      return;
    } catch (err) {
      last = (err as Error).message;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(
    `RabbitMQ did not accept connections within ${timeoutMs} ms (${redactCredentials(last)}). Log tail:\n${await diagnostics()}`,
  );
}

async function dockerAnswers(): Promise<boolean> {
  try {
    await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

async function startDocker(options: StartRabbitMQOptions): Promise<RabbitMQ> {
  const { stdout } = await run('docker', [
    'run',
    '-d',
    '--rm',
    '-p',
    '127.0.0.1::5672',
    '-p',
    '127.0.0.1::15672',
    'rabbitmq:3.13-management',
  ]);
  const id = stdout.trim();
  const port = async (p: number) => (await run('docker', ['port', id, String(p)])).stdout.trim().split(':').pop();
  const url = `amqp://guest:guest@127.0.0.1:${await port(5672)}`;
  const stop = async () => {
    await run('docker', ['rm', '-f', id]).catch(() => undefined);
  };
  try {
    await waitForBroker(
      url,
      options.timeoutMs ?? 120_000,
      async () => (await run('docker', ['logs', '--tail', '15', id])).stdout,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, managementUrl: `http://guest:guest@127.0.0.1:${await port(15672)}`, source: 'docker', stop };
}

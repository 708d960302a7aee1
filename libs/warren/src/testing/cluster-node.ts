import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import amqplib from 'amqplib';
import { alive, type ClusterNodeLayout, sleep } from './cluster-dir.js';

const run = promisify(execFile);

/** What every node of one cluster shares. */
export interface ClusterInstall {
  /** The `rabbitmq-server` script; `rabbitmqctl` sits beside it. */
  server: string;
  /** A private HOME holding the cluster's `.erlang.cookie`, for the nodes and for rabbitmqctl alike. */
  home: string;
  /** Hides the cluster's secrets (URL credentials, the cookie) in text bound for an error. */
  redact(text: string): string;
}

const LOOPBACK_ONLY = '-kernel inet_dist_use_interface {127,0,0,1}';

/**
 * One node of a test cluster: a private `rabbitmq-server` process on 127.0.0.1, started detached in
 * its own process group so a SIGKILL takes the beam down with its launcher, and so the node outlives
 * the test worker that started it (the cluster's owner stops it).
 */
export class ClusterNode {
  private spawnError?: Error;

  constructor(
    readonly index: number,
    readonly layout: ClusterNodeLayout,
    private readonly install: ClusterInstall,
  ) {}

  get name(): string {
    return this.layout.name;
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.layout.amqpPort}`;
  }

  get managementUrl(): string {
    return `http://guest:guest@127.0.0.1:${this.layout.httpPort}`;
  }

  /** How errors name the node. */
  get label(): string {
    return `node ${this.index} (${this.layout.name})`;
  }

  async writeConfig(): Promise<void> {
    const { dir, amqpPort, httpPort } = this.layout;
    await mkdir(join(dir, 'log'), { recursive: true });
    await writeFile(join(dir, 'enabled_plugins'), '[rabbitmq_management].\n');
    await writeFile(
      join(dir, 'rabbitmq.conf'),
      [
        `listeners.tcp.1 = 127.0.0.1:${amqpPort}`,
        'management.tcp.ip = 127.0.0.1',
        `management.tcp.port = ${httpPort}`,
        // Membership comes from join_cluster and the data dir, never from a discovery backend.
        'cluster_formation.peer_discovery_backend = classic_config',
        'log.console = false',
        'log.file.level = warning',
      ].join('\n') + '\n',
    );
  }

  /** Starts the node's process and returns; `awaitUp` says when the node is up. */
  launch(): void {
    const out = openSync(join(this.layout.dir, 'server.out'), 'a');
    this.spawnError = undefined;
    try {
      const child = spawn(this.install.server, [], {
        env: this.env(),
        cwd: this.layout.dir,
        detached: true,
        stdio: ['ignore', out, out],
      });
      child.once('error', (err) => (this.spawnError = err));
      child.unref();
      this.layout.pid = child.pid;
    } finally {
      closeSync(out);
    }
  }

  /** Whether any process of the node's group is still there. */
  alive(): boolean {
    return this.layout.pid ? alive(-this.layout.pid) : false;
  }

  /** Sends `signal` to the node's whole process group and waits for the group to be gone. */
  async signal(signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const pid = this.layout.pid;
    if (!pid) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
    const deadline = Date.now() + timeoutMs;
    while (this.alive()) {
      if (Date.now() > deadline)
        throw new Error(`RabbitMQ cluster ${this.label} was still running ${timeoutMs} ms after ${signal}`);
      await sleep(100);
    }
    this.layout.pid = undefined;
  }

  /**
   * Resolves when the node accepts AMQP connections and its management API answers (the plugin
   * starts after the broker's core, and the suites use both); fails at once, with the log tail,
   * when the node's process exits.
   */
  async awaitUp(deadline: number): Promise<void> {
    for (;;) {
      if (!this.alive())
        throw await this.failure(
          this.spawnError ? `could not be started (${this.spawnError.message})` : 'exited while starting',
        );
      const problem = await this.upProblem();
      if (!problem) return;
      if (Date.now() > deadline) throw await this.failure(`was not up in time (last: ${problem})`);
      await sleep(250);
    }
  }

  /** Why the node is not up yet, or undefined when it is. */
  private async upProblem(): Promise<string | undefined> {
    try {
      const connection = await amqplib.connect(this.url);
      await connection.close();
    } catch (err) {
      return `AMQP: ${(err as Error).message}`;
    }
    try {
      await this.get('/api/whoami');
    } catch (err) {
      return (err as Error).message;
    }
    return undefined;
  }

  /** Runs `rabbitmqctl -n <this node> …args` with the cluster's cookie. */
  async ctl(args: string[], timeoutMs = 120_000): Promise<string> {
    const ctl = join(dirname(this.install.server), 'rabbitmqctl');
    try {
      const { stdout } = await run(ctl, ['-n', this.layout.name, ...args], { env: this.env(), timeout: timeoutMs });
      return stdout;
    } catch (err) {
      const { stdout = '', stderr = '', message } = err as { stdout?: string; stderr?: string; message: string };
      const output = `${stderr}\n${stdout}`.trim() || message;
      throw await this.failure(`refused \`rabbitmqctl ${args.join(' ')}\`: ${output}`);
    }
  }

  /** GET on the node's management API; throws on anything but a 2xx (with the HTTP `status` when there is one). */
  async get<T>(path: string): Promise<T> {
    const response = await fetch(`http://127.0.0.1:${this.layout.httpPort}${path}`, {
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
      signal: AbortSignal.timeout(10_000),
    }).catch((err: Error) => {
      throw new Error(`management API GET ${path} on ${this.label}: ${err.message}`);
    });
    const text = await response.text();
    if (!response.ok)
      throw Object.assign(
        new Error(`management API GET ${path} on ${this.label}: ${response.status} ${text.slice(0, 200)}`),
        { status: response.status },
      );
    return JSON.parse(text) as T;
  }

  /** An error naming the node, with the end of its log and of its launcher's output. */
  async failure(what: string): Promise<Error> {
    const tail = async (file: string) => {
      const text = await readFile(join(this.layout.dir, file), 'utf8').catch(() => '');
      return text.trimEnd().split('\n').slice(-15).join('\n');
    };
    const logs = [`--- log/node.log\n${await tail('log/node.log')}`, `--- server.out\n${await tail('server.out')}`];
    return new Error(this.install.redact(`RabbitMQ cluster ${this.label} ${what}\n${logs.join('\n')}`));
  }

  private env(): NodeJS.ProcessEnv {
    const { dir, distPort, name } = this.layout;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: this.install.home,
      RABBITMQ_NODENAME: name,
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_LOGS: join(dir, 'log', 'node.log'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
      RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
      RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
      RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: LOOPBACK_ONLY,
      RABBITMQ_CTL_ERL_ARGS: LOOPBACK_ONLY,
      ERL_EPMD_ADDRESS: '127.0.0.1',
    };
    // The cookie comes from the private HOME only; this deprecated variable would override it.
    delete env.RABBITMQ_ERLANG_COOKIE;
    return env;
  }
}

import { join } from 'node:path';
import {
  alive,
  claimClusterDir,
  type ClusterDescription,
  type ClusterNodeLayout,
  createClusterDir,
  createClusterHome,
  destroyClusterDir,
  readCookie,
  readDescription,
  removeOrphanClusters,
  sleep,
  writeDescription,
} from './cluster-dir.js';
import { type ClusterInstall, ClusterNode } from './cluster-node.js';
import { freePort } from './free-port.js';
import { findServer } from './start-rabbitmq.js';

export interface RabbitMQClusterNode {
  /** Erlang node name (`rabbitmqctl -n`, the management API's `node` and `leader`). */
  name: string;
  /** AMQP URL of this node. */
  url: string;
  /** Base URL of this node's management HTTP API, with credentials. */
  managementUrl: string;
}

export interface RabbitMQCluster {
  /** The nodes, by index: the index is what `stop`, `kill`, `start` take and `nodeOf` returns. */
  nodes: RabbitMQClusterNode[];
  /** Every node's AMQP URL, by index. */
  urls: string[];
  /** Stops node `i` gracefully (SIGTERM); its data dir stays, for `start(i)`. */
  stop(i: number): Promise<void>;
  /** Kills node `i` hard: SIGKILL to its whole process group, as a crash would. */
  kill(i: number): Promise<void>;
  /**
   * Starts a stopped or killed node `i` again from its data dir and waits until the other members
   * see it running; a node that is running is left as it is.
   */
  start(i: number): Promise<void>;
  /** Index of the node holding `queue`'s leader (a quorum queue) or the queue itself (a classic one). */
  nodeOf(queue: string, vhost?: string): Promise<number>;
  /** Stops every node and removes their dirs; leaves the shared cluster (`RABBITMQ_CLUSTER_DIR`) to its owner. */
  close(): Promise<void>;
}

export interface StartRabbitMQClusterOptions {
  /** How many nodes. Default 3. */
  nodes?: number;
  /** How long forming the cluster, or bringing a node back, may take. Default 180 s (a 2-core machine). */
  timeoutMs?: number;
  /** Ignore RABBITMQ_CLUSTER_DIR and always form a cluster of one's own. */
  private?: boolean;
}

export interface SharedRabbitMQCluster {
  /** The directory `RABBITMQ_CLUSTER_DIR` names. */
  dir: string;
  /** Stops the cluster if a suite started one, and removes the directory. */
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 180_000;

/**
 * A real RabbitMQ cluster for tests: `nodes` private nodes of the local `rabbitmq-server` install
 * on this machine (own node names and data dirs, free ports on 127.0.0.1 for AMQP, management and
 * Erlang distribution, one Erlang cookie in a private HOME), joined with `rabbitmqctl join_cluster`.
 * With `RABBITMQ_CLUSTER_DIR` set (see `shareRabbitMQCluster`), every caller gets the one cluster
 * of that directory, formed by the first to ask, with all its nodes running. Throws when the
 * cluster cannot be formed: a test never quietly skips it.
 */
export async function startRabbitMQCluster(options: StartRabbitMQClusterOptions = {}): Promise<RabbitMQCluster> {
  const count = options.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1)
    throw new Error(`startRabbitMQCluster: nodes must be a whole number of at least 1, got ${count}`);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const shared = process.env.RABBITMQ_CLUSTER_DIR;
  if (shared && !options.private) return useShared(shared, count, timeoutMs);
  await removeOrphanClusters();
  const dir = await createClusterDir();
  try {
    const nodes = await form(dir, count, timeoutMs);
    return handle(dir, nodes, timeoutMs, true);
  } catch (err) {
    await destroyClusterDir(dir);
    throw err;
  }
}

export interface ShareRabbitMQClusterOptions {
  /**
   * Start forming the cluster at once, in the background, instead of when a suite first asks: a
   * run known to hold cluster suites (the whole run) then forms it while the other suites run,
   * and the first cluster suite finds it formed or waits for the rest. `close()` waits for the
   * forming to end. A cluster that cannot be formed fails the suites that ask, as before.
   */
  formNow?: { nodes?: number; timeoutMs?: number };
}

/**
 * For a jest global setup: sets `RABBITMQ_CLUSTER_DIR` to a fresh directory, so that the suites'
 * `startRabbitMQCluster()` calls share one cluster, formed only when a suite first asks for it (a
 * run without cluster suites pays nothing) or, with `formNow`, from now on. Call `close()` in the
 * global teardown.
 */
export async function shareRabbitMQCluster(options: ShareRabbitMQClusterOptions = {}): Promise<SharedRabbitMQCluster> {
  await removeOrphanClusters();
  const dir = await createClusterDir();
  process.env.RABBITMQ_CLUSTER_DIR = dir;
  const { formNow } = options;
  // A failure is written into the directory for the suites to read (useShared): nothing to do here.
  const forming = formNow
    ? useShared(dir, formNow.nodes ?? 3, formNow.timeoutMs ?? DEFAULT_TIMEOUT_MS).then(
        () => undefined,
        () => undefined,
      )
    : undefined;
  return {
    dir,
    close: async () => {
      if (process.env.RABBITMQ_CLUSTER_DIR === dir) delete process.env.RABBITMQ_CLUSTER_DIR;
      await forming;
      await destroyClusterDir(dir);
    },
  };
}

async function useShared(dir: string, count: number, timeoutMs: number): Promise<RabbitMQCluster> {
  const claimed = await claimClusterDir(dir, { status: 'starting', starter: process.pid, nodes: [] });
  if (claimed) {
    try {
      return handle(dir, await form(dir, count, timeoutMs), timeoutMs, false);
    } catch (err) {
      // Every later suite reads why, instead of waiting for a cluster that will never come.
      await writeDescription(dir, { status: 'failed', starter: process.pid, error: (err as Error).message, nodes: [] });
      throw err;
    }
  }
  const description = await awaitFormed(dir, timeoutMs);
  if (description.nodes.length !== count)
    throw new Error(
      `The shared RabbitMQ cluster in ${dir} has ${description.nodes.length} nodes; this caller asked for ${count}`,
    );
  const install = await installFor(dir, await readCookie(dir));
  const nodes = description.nodes.map((layout, i) => new ClusterNode(i, layout, install));
  const cluster = handle(dir, nodes, timeoutMs, false);
  // An earlier suite may have left a node down: each caller gets every node running.
  for (let i = 0; i < nodes.length; i++) await cluster.start(i);
  return cluster;
}

async function awaitFormed(dir: string, timeoutMs: number): Promise<ClusterDescription> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const description = await readDescription(dir);
    if (description?.status === 'running') return description;
    if (description?.status === 'failed')
      throw new Error(`The shared RabbitMQ cluster in ${dir} failed to start: ${description.error}`);
    if (description && !alive(description.starter))
      throw new Error(`The process forming the shared RabbitMQ cluster in ${dir} (pid ${description.starter}) died`);
    if (Date.now() > deadline)
      throw new Error(`The shared RabbitMQ cluster in ${dir} was not formed in ${timeoutMs} ms`);
    await sleep(250);
  }
}

/** Starts `count` nodes side by side, then joins every other node to node 0. */
async function form(dir: string, count: number, timeoutMs: number): Promise<ClusterNode[]> {
  const deadline = Date.now() + timeoutMs;
  const { cookie } = await createClusterHome(dir);
  const ports = await distinctFreePorts(count * 3);
  const tag = dir.slice(dir.lastIndexOf('-') + 1);
  const layouts: ClusterNodeLayout[] = Array.from({ length: count }, (_, i) => ({
    name: `warren-cluster-${process.pid}-${tag}-${i}@localhost`,
    dir: join(dir, `node-${i}`),
    amqpPort: ports[3 * i],
    httpPort: ports[3 * i + 1],
    distPort: ports[3 * i + 2],
  }));
  const install = await installFor(dir, cookie);
  const nodes = layouts.map((layout, i) => new ClusterNode(i, layout, install));
  const describe = (status: ClusterDescription['status']) =>
    writeDescription(dir, { status, starter: process.pid, nodes: layouts });
  await Promise.all(nodes.map((node) => node.writeConfig()));
  for (const node of nodes) node.launch();
  // Recorded before waiting, so whoever cleans up after a crash of this process finds the nodes.
  await describe('starting');
  try {
    await Promise.all(nodes.map((node) => node.awaitUp(deadline)));
    // stop_app and start_app touch one node each, so they run side by side (they are most of the
    // time); the joins, which change the cluster's membership, go one at a time.
    const joining = nodes.slice(1);
    await Promise.all(joining.map((node) => node.ctl(['stop_app'])));
    for (const node of joining) await node.ctl(['join_cluster', nodes[0].name]);
    await Promise.all(joining.map((node) => node.ctl(['start_app'])));
    await Promise.all(nodes.map((node) => node.awaitUp(deadline)));
    await awaitRunning(nodes[0], nodes, deadline);
  } catch (err) {
    await Promise.all(nodes.map((node) => node.signal('SIGKILL', 10_000).catch(() => undefined)));
    throw err;
  }
  await describe('running');
  return nodes;
}

function handle(dir: string, nodes: ClusterNode[], timeoutMs: number, owned: boolean): RabbitMQCluster {
  const at = (i: number): ClusterNode => {
    const node = nodes[i];
    if (!node) throw new RangeError(`The RabbitMQ cluster has no node ${i}: its nodes are 0 to ${nodes.length - 1}`);
    return node;
  };
  const save = async () => {
    const description = await readDescription(dir);
    await writeDescription(dir, {
      status: 'running',
      starter: description?.starter ?? process.pid,
      nodes: nodes.map((n) => n.layout),
    });
  };
  return {
    nodes: nodes.map((n) => ({ name: n.name, url: n.url, managementUrl: n.managementUrl })),
    urls: nodes.map((n) => n.url),
    stop: async (i) => {
      await at(i).signal('SIGTERM', timeoutMs);
      await save();
    },
    kill: async (i) => {
      await at(i).signal('SIGKILL', 10_000);
      await save();
    },
    start: async (i) => {
      const node = at(i);
      const deadline = Date.now() + timeoutMs;
      if (!node.alive()) {
        node.launch();
        await save();
      }
      await node.awaitUp(deadline);
      // Seen from another member where one runs: the node is back in the cluster, not merely up.
      await awaitRunning(nodes.find((n) => n !== node && n.alive()) ?? node, [node], deadline);
    },
    nodeOf: async (queue, vhost = '/') => {
      const path = `/api/queues/${encodeURIComponent(vhost)}/${encodeURIComponent(queue)}`;
      const where = `nodeOf("${queue}")`;
      let unreachable: Error | undefined;
      // Any running member can answer for the whole cluster; one that is starting or stopping may not.
      for (const node of nodes.filter((n) => n.alive())) {
        let info: { node?: string; leader?: string };
        try {
          info = await node.get(path);
        } catch (err) {
          if ((err as { status?: number }).status === 404)
            throw new Error(`${where}: no queue "${queue}" in vhost "${vhost}"`, { cause: err });
          unreachable = err as Error;
          continue;
        }
        const holder = info.leader ?? info.node;
        const index = nodes.findIndex((n) => n.name === holder);
        if (index < 0) throw new Error(`${where}: the queue is on ${holder}, which is not a node of this cluster`);
        return index;
      }
      throw new Error(`${where}: no running node answered (${unreachable?.message ?? 'none is running'})`);
    },
    close: async () => {
      if (owned) await destroyClusterDir(dir);
    },
  };
}

/** Waits until `via`'s management API lists each of `expected` as a running cluster member. */
async function awaitRunning(via: ClusterNode, expected: ClusterNode[], deadline: number): Promise<void> {
  let seen: string;
  for (;;) {
    try {
      const listed = await via.get<{ name: string; running: boolean }[]>('/api/nodes');
      const running = new Set(listed.filter((n) => n.running).map((n) => n.name));
      if (expected.every((n) => running.has(n.name))) return;
      seen = `running: ${[...running].join(', ')}`;
    } catch (err) {
      seen = (err as Error).message;
    }
    if (Date.now() > deadline)
      throw await via.failure(
        `did not see ${expected.map((n) => n.name).join(', ')} running in the cluster in time (${seen})`,
      );
    await sleep(250);
  }
}

async function installFor(dir: string, cookie: string): Promise<ClusterInstall> {
  const server = await findServer();
  if (!server)
    throw new Error(
      'No local rabbitmq-server install for the test cluster: install the Debian package `rabbitmq-server` ' +
        '(apt-get install rabbitmq-server) or set RABBITMQ_SERVER to its rabbitmq-server script.',
    );
  return {
    server,
    home: join(dir, 'home'),
    redact: (text) =>
      text
        .replace(/(\w+:\/\/[^:@/\s]*):[^@/\s]*@/g, '$1:***@')
        .split(cookie)
        .join('***'),
  };
}

/** `n` ports nothing listens on, no two alike (the kernel may hand a just-released port out again). */
async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

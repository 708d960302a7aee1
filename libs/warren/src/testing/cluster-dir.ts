import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where one node of a test cluster lives and listens: what the cluster's description file keeps per node. */
export interface ClusterNodeLayout {
  /** Erlang node name, `…@localhost`. */
  name: string;
  /** The node's own directory: config, data (mnesia, quorum logs), logs. */
  dir: string;
  amqpPort: number;
  httpPort: number;
  distPort: number;
  /** Process group of the running node (the launcher script and its beam), absent while it is down. */
  pid?: number;
}

/**
 * A test cluster's directory: `cluster.json` describing its nodes (so a test worker, the jest
 * teardown or a later run can act on nodes another process started), `home/.erlang.cookie`, and one
 * directory per node. The owner's pid in the directory's name lets a later run remove a cluster
 * whose owner died before stopping it.
 */
export interface ClusterDescription {
  status: 'starting' | 'running' | 'failed';
  /** The process forming the cluster, while it does. */
  starter: number;
  /** Why forming it failed, for every suite that asked for it. */
  error?: string;
  nodes: ClusterNodeLayout[];
}

const PREFIX = 'warren-cluster-';
const DESCRIPTION = 'cluster.json';

export async function createClusterDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), `${PREFIX}${process.pid}-`));
}

/** The private HOME the nodes and rabbitmqctl share, holding a fresh Erlang cookie. */
export async function createClusterHome(dir: string): Promise<{ home: string; cookie: string }> {
  const home = join(dir, 'home');
  const cookie = randomBytes(16).toString('hex');
  await mkdir(home, { recursive: true });
  // Erlang refuses a cookie file that others can read.
  await writeFile(join(home, '.erlang.cookie'), cookie, { mode: 0o400 });
  return { home, cookie };
}

export async function readCookie(dir: string): Promise<string> {
  return (await readFile(join(dir, 'home', '.erlang.cookie'), 'utf8')).trim();
}

/**
 * Claims the directory for forming a cluster: true for the one caller that creates the description,
 * false when another process already has.
 */
export async function claimClusterDir(dir: string, description: ClusterDescription): Promise<boolean> {
  try {
    await writeFile(join(dir, DESCRIPTION), JSON.stringify(description), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

export async function writeDescription(dir: string, description: ClusterDescription): Promise<void> {
  // Written aside and renamed, so a reader in another process never sees half a file.
  const temp = join(dir, `${DESCRIPTION}.${process.pid}.tmp`);
  await writeFile(temp, JSON.stringify(description, null, 2));
  await rename(temp, join(dir, DESCRIPTION));
}

export async function readDescription(dir: string): Promise<ClusterDescription | undefined> {
  const text = await readFile(join(dir, DESCRIPTION), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as ClusterDescription);
}

/** SIGKILLs every node the description names and removes the directory. */
export async function destroyClusterDir(dir: string): Promise<void> {
  const description = await readDescription(dir).catch(() => undefined);
  const groups: number[] = [];
  for (const node of description?.nodes ?? []) {
    if (!node.pid) continue;
    // The beam's own pid too: a launcher killed alone leaves its beam running in the group.
    const beam = Number(await readFile(join(node.dir, 'rabbitmq.pid'), 'utf8').catch(() => ''));
    for (const [pid, target] of [
      [node.pid, -node.pid],
      [beam, beam],
    ]) {
      if (!pid || !(await isNodeProcess(pid, node.name))) continue;
      try {
        process.kill(target, 'SIGKILL');
        groups.push(-node.pid);
      } catch {
        // already gone
      }
    }
  }
  // Wait for the processes to be gone, so nothing writes into the directory being removed.
  for (const group of groups) for (let i = 0; i < 100 && alive(group); i++) await sleep(100);
  await rm(dir, { recursive: true, force: true });
}

/**
 * Whether `pid` is still a process of node `name`, not one that got its pid after the node died
 * (the description of an orphaned cluster can be days old). Without /proc to ask, it is trusted.
 */
async function isNodeProcess(pid: number, name: string): Promise<boolean> {
  if (!existsSync('/proc/self')) return true;
  const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
  return environ.split('\0').includes(`RABBITMQ_NODENAME=${name}`);
}

/** Removes clusters left behind by runs whose owner process died before stopping them. */
export async function removeOrphanClusters(): Promise<void> {
  const entries = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const entry of entries) {
    const owner = Number(new RegExp(`^${PREFIX}(\\d+)-`).exec(entry)?.[1]);
    if (owner && !alive(owner)) await destroyClusterDir(join(tmpdir(), entry));
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

const run = promisify(execFile);

export interface Postgres {
  /** `postgres://` URL of the server's `postgres` database. */
  url: string;
  /** Where the server came from. */
  source: 'env' | 'local';
  /** Stops and removes a server this call started; leaves an external one alone. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** How long to wait for the server to accept connections. Default 60 s. */
  timeoutMs?: number;
  /** Ignore DATABASE_URL and always start a private server. */
  private?: boolean;
}

const DIR_PREFIX = 'warren-postgres-';

/**
 * A real PostgreSQL for tests. Uses `DATABASE_URL` when set; otherwise starts a private server
 * from a local install (Debian's `postgresql` package: initdb in a temp dir, a free loopback
 * port, trust authentication on 127.0.0.1 only). As root, the server runs as the `postgres`
 * user, since PostgreSQL refuses to run as root. Throws, saying how to get one, when neither is
 * possible: a test run never quietly skips the database.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<Postgres> {
  const fromEnv = process.env.DATABASE_URL;
  if (fromEnv && !options.private) return { url: fromEnv, source: 'env', stop: async () => undefined };
  const bin = findPostgresBin();
  if (!bin) {
    throw new Error(
      'No PostgreSQL for the tests: set DATABASE_URL to a running server, or install the Debian package ' +
        '`postgresql` (apt-get install postgresql; its own cluster need not run) so initdb and postgres are in ' +
        '/usr/lib/postgresql/<version>/bin, or name that folder in POSTGRES_BIN.',
    );
  }
  return startLocal(bin, options);
}

/** The folder holding `initdb` and `postgres`: POSTGRES_BIN, or the newest Debian install. */
export function findPostgresBin(): string | undefined {
  const fromEnv = process.env.POSTGRES_BIN;
  if (fromEnv && existsSync(join(fromEnv, 'initdb'))) return fromEnv;
  const debian = '/usr/lib/postgresql';
  const versions = existsSync(debian)
    ? readdirSync(debian)
        .filter((v) => existsSync(join(debian, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length > 0) return join(debian, versions[0], 'bin');
  for (const dir of ['/usr/local/bin', '/opt/homebrew/bin', '/usr/bin']) {
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) return dir;
  }
  return undefined;
}

async function startLocal(bin: string, options: StartPostgresOptions): Promise<Postgres> {
  await removeOrphans();
  const owner = await serverUser();
  // The owner's pid in the name lets a later run find and remove a server whose owner died.
  const dir = await mkdtemp(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  if (owner) await chown(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const asOwner = owner ? { uid: owner.uid, gid: owner.gid } : {};
  try {
    await run(
      join(bin, 'initdb'),
      ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C'],
      { ...asOwner, cwd: dir, timeout: 60_000 },
    );
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`initdb failed in ${data}: ${(err as { stderr?: string }).stderr || (err as Error).message}`, {
      cause: err,
    });
  }
  const port = await freePort();
  const child: ChildProcess = spawn(
    join(bin, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${dir}`,
      // A test database is thrown away, never recovered: no need to wait for the disk.
      '-c',
      'fsync=off',
      '-c',
      'full_page_writes=off',
      // Fault tests run several apps with a pool each on one server.
      '-c',
      'max_connections=300',
    ],
    { ...asOwner, cwd: dir, detached: true, stdio: 'ignore' },
  );
  child.unref();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const stopServer = async () => {
    const pid = child.pid;
    if (!pid) return;
    try {
      // SIGQUIT: immediate shutdown; the data is thrown away anyway.
      process.kill(-pid, 'SIGQUIT');
    } catch {
      return;
    }
    for (let i = 0; i < 200; i++) {
      if (!alive(-pid)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  };
  try {
    await waitForServer(bin, port, options.timeoutMs ?? 60_000, () => child.exitCode !== null);
  } catch (err) {
    await stopServer();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    source: 'local',
    stop: async () => {
      await stopServer();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** PostgreSQL will not run as root: then the server runs as the `postgres` user the package made. */
async function serverUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    throw new Error(
      'PostgreSQL cannot run as root and there is no `postgres` user to run it as: install the Debian ' +
        'package `postgresql` (which creates it), run the tests as another user, or set DATABASE_URL.',
    );
  }
}

async function waitForServer(bin: string, port: number, timeoutMs: number, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (exited()) throw new Error(`PostgreSQL exited while starting on 127.0.0.1:${port}`);
    try {
      await run(join(bin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres'], {
        timeout: 5000,
      });
      return;
    } catch (err) {
      last = (err as Error).message;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`PostgreSQL did not accept connections on 127.0.0.1:${port} within ${timeoutMs} ms (${last})`);
}

/** Stops servers left behind by runs killed before their teardown: their owner process is gone. */
async function removeOrphans(): Promise<void> {
  const entries = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const entry of entries) {
    const owner = Number(new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(entry)?.[1]);
    if (!owner || alive(owner)) continue;
    const dir = join(tmpdir(), entry);
    const pid = Number((await readFile(join(dir, 'data', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
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

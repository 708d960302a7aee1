import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { freshDatabase as freshDatabaseOn, startPostgres } from 'nestjs-warren/testing';
import pg from 'pg';
import { databaseUrl, freshDatabase } from './support/database.js';

async function serverVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version;
  } finally {
    await client.end();
  }
}

describe('startPostgres (nestjs-warren/testing)', () => {
  it('gives the suites a real PostgreSQL through DATABASE_URL', async () => {
    expect(await serverVersion(databaseUrl())).toMatch(/^\d+/);
  });

  it('starts a private server on 127.0.0.1 and removes it on stop', async () => {
    const before = new Set(await readdir(tmpdir()));
    const server = await startPostgres({ private: true });
    expect(server.source).toBe('local');
    expect(new URL(server.url).hostname).toBe('127.0.0.1');
    expect(await serverVersion(server.url)).toMatch(/^\d+/);
    const dirs = (await readdir(tmpdir())).filter((d) => d.startsWith('warren-postgres-') && !before.has(d));
    expect(dirs).toHaveLength(1);
    await server.stop();
    expect(existsSync(`${tmpdir()}/${dirs[0]}`)).toBe(false);
    await expect(serverVersion(server.url)).rejects.toThrow();
  });

  it('gives a suite a database of its own, dropped afterwards', async () => {
    const db = await freshDatabase();
    expect(await serverVersion(db.url)).toMatch(/^\d+/);
    await db.drop();
    await expect(serverVersion(db.url)).rejects.toThrow(/does not exist/);
  });

  it('freshDatabase() makes a database on any server, named by its prefix, and refuses a prefix that is no SQL name', async () => {
    const db = await freshDatabaseOn({ serverUrl: databaseUrl(), prefix: 'warren_bench' });
    expect(db.name).toMatch(/^warren_bench_[0-9a-f]{10}$/);
    expect(new URL(db.url).pathname).toBe(`/${db.name}`);
    expect(await serverVersion(db.url)).toMatch(/^\d+/);
    await db.drop();
    await expect(serverVersion(db.url)).rejects.toThrow(/does not exist/);
    await expect(freshDatabaseOn({ serverUrl: databaseUrl(), prefix: 'x; DROP' })).rejects.toThrow(
      'freshDatabase(): the prefix "x; DROP" is not a plain SQL name (letters, digits, _)',
    );
  });
});

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inMemoryPglite } from './pglite-template.js';

describe('inMemoryPglite', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-pglite-template-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('boots past a damaged copy by a fresh initdb and replaces it; the next database starts from the new copy, empty and working', async () => {
    const file = join(dir, 'template.tar.gz');
    await writeFile(file, 'not a tarball');
    const fresh = await inMemoryPglite(file);
    try {
      expect((await fresh.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    } finally {
      await fresh.close();
    }
    const copy = await readFile(file);
    // Replaced whole: a gzip stream now.
    expect(copy.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));

    const loaded = await inMemoryPglite(file);
    try {
      // initdb's output only, nothing of an app's; and a database that takes DDL and data.
      expect((await loaded.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)).rows).toEqual([]);
      await loaded.query('CREATE TABLE t (n int)');
      await loaded.query('INSERT INTO t VALUES (7)');
      expect((await loaded.query<{ n: number }>('SELECT n FROM t')).rows).toEqual([{ n: 7 }]);
    } finally {
      await loaded.close();
    }
    // Loading it did not write it again.
    expect((await readFile(file)).equals(copy)).toBe(true);
  }, 60_000);
});

import { PGlite } from '@electric-sql/pglite';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * A throwaway in-memory PGlite (app.module.ts: `warren topology` of the order service). A fresh
 * one runs initdb inside WebAssembly, seconds of CPU and most of such a run. So the data
 * directory initdb leaves, an empty cluster holding no one's data, is kept once per PGlite
 * install (in its node_modules/.cache, beside the code that made it) and later processes start
 * from that copy, a fraction of the cost. Any trouble with the copy falls back to initdb: it only
 * ever costs time.
 */
export async function inMemoryPglite(
  /** Where the copy is kept: this PGlite install's place unless given (a spec's temp dir). */
  templateFile?: string,
): Promise<PGlite> {
  const cached = templateFile ?? (await templatePath().catch(() => undefined));
  const template = cached === undefined ? undefined : await readFile(cached).catch(() => undefined);
  if (template !== undefined) {
    try {
      return await PGlite.create('memory://', { loadDataDir: new Blob([template]) });
    } catch {
      // A damaged or foreign copy: made afresh below, and replaced.
    }
  }
  const db = await PGlite.create('memory://');
  // Dumped before anyone queries it: the copy is initdb's output, nothing of the app's.
  if (cached !== undefined) await keep(db, cached).catch(() => undefined);
  return db;
}

/** Where this PGlite install's copy lives: named by its version, whose initdb made it. */
async function templatePath(): Promise<string> {
  // …/node_modules/@electric-sql/pglite/dist/index.cjs: the package's root is one up.
  const root = join(dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite')), '..');
  const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
  return join(root, '..', '..', '.cache', 'warren-orders', `pglite-${version}-initdb.tar.gz`);
}

/** Writes the copy whole or not at all (a temp file renamed), so a concurrent reader never sees half. */
async function keep(db: PGlite, file: string): Promise<void> {
  const dump = Buffer.from(await (await db.dumpDataDir('gzip')).arrayBuffer());
  await mkdir(dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.partial`;
  try {
    await writeFile(partial, dump);
    await rename(partial, file);
  } finally {
    await rm(partial, { force: true });
  }
}

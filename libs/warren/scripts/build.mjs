// Builds the package twice: an ES module build for NestJS 12 (ESM-only) apps and a CommonJS
// build for NestJS 11 apps. Each output folder gets a package.json naming its module type so
// Node reads the .js files the right way whatever the package's own "type" says.
// The build goes to a fresh folder that replaces dist/ in one rename, so a process reading the
// package meanwhile (a test run, a watching app) never finds it half-written or missing.
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const staging = join(root, `.dist-${process.pid}`);
rmSync(staging, { recursive: true, force: true });
try {
  for (const [config, out, type] of [
    ['tsconfig.lib.json', 'esm', 'module'],
    ['tsconfig.cjs.json', 'cjs', 'commonjs'],
  ]) {
    const outDir = join(staging, out);
    execFileSync(process.execPath, [tsc, '-p', join(root, config), '--outDir', outDir], { stdio: 'inherit' });
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'package.json'), JSON.stringify({ type }) + '\n');
  }
  const old = join(root, `.dist-old-${process.pid}`);
  try {
    renameSync(join(root, 'dist'), old);
  } catch {
    // no previous build
  }
  renameSync(staging, join(root, 'dist'));
  rmSync(old, { recursive: true, force: true });
} catch (err) {
  rmSync(staging, { recursive: true, force: true });
  throw err;
}

// Builds the package twice: an ES module build for NestJS 12 (ESM-only) apps and a CommonJS
// build for NestJS 11 apps. Each output folder gets a package.json naming its module type so
// Node reads the .js files the right way whatever the package's own "type" says.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(join(root, 'dist'), { recursive: true, force: true });
for (const [config, out, type] of [
  ['tsconfig.lib.json', 'esm', 'module'],
  ['tsconfig.cjs.json', 'cjs', 'commonjs'],
]) {
  execFileSync(process.execPath, [tsc, '-p', join(root, config)], { stdio: 'inherit' });
  mkdirSync(join(root, 'dist', out), { recursive: true });
  writeFileSync(join(root, 'dist', out, 'package.json'), JSON.stringify({ type }) + '\n');
}

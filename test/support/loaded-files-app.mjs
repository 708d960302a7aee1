// Boots a Warren app on the BUILT package, its ES module or its CommonJS build, against one broker
// URL, closes it, and prints as one JSON line which files of that build the process loaded: the
// proof that an amqp:// app never loads the in-memory broker (memory-entry.e2e-spec.ts).
// Arguments: <esm|cjs> <broker url>.
import { createRequire, register } from 'node:module';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel } from 'node:worker_threads';

const [build, url] = process.argv.slice(2);
if ((build !== 'esm' && build !== 'cjs') || !url) throw new Error('usage: loaded-files-app.mjs <esm|cjs> <broker url>');
const require = createRequire(import.meta.url);

// ES modules are seen by a load hook, which runs on the loader's own thread and reports each URL
// over a port; CommonJS files are in require.cache.
const hooks = `
let port;
export function initialize(data) { port = data.port; }
export async function load(url, context, next) { port.postMessage(url); return next(url, context); }`;
const { port1, port2 } = new MessageChannel();
register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { port: port2 }, transferList: [port2] });
const imported = [];
// Messages on one port arrive in order: once this module's load is reported, every earlier one was.
const LAST = 'data:text/javascript,export const last = true;';
let reportedAll;
const allReported = new Promise((resolve) => (reportedAll = resolve));
port1.on('message', (loaded) => (loaded === LAST ? reportedAll() : imported.push(loaded)));

const load = build === 'cjs' ? async (id) => require(id) : (id) => import(id);
await load('reflect-metadata');
const { Module } = await load('@nestjs/common');
const { NestFactory } = await load('@nestjs/core');
const warren = await load('nestjs-warren');

class App {}
Module({ imports: [warren.WarrenModule.forRoot({ url, connectTimeoutMs: 10_000 })] })(App);
const app = await NestFactory.createApplicationContext(App, { logger: ['error', 'warn'] });
await app.close();

await import(LAST);
await allReported;
port1.close();
const files =
  build === 'cjs'
    ? Object.keys(require.cache)
    : imported.filter((loaded) => loaded.startsWith('file:')).map((loaded) => fileURLToPath(loaded));
const dist = join(require.resolve('nestjs-warren/package.json'), '..', 'dist', build) + sep;
const loaded = files
  .filter((file) => file.startsWith(dist))
  .map((file) => relative(dist, file).split(sep).join('/'))
  .sort();
// Where the package's own entry point for the in-memory broker leads in this build (null: nowhere).
let memoryEntry = null;
try {
  const entry =
    build === 'cjs'
      ? require.resolve('nestjs-warren/memory')
      : fileURLToPath(import.meta.resolve('nestjs-warren/memory'));
  memoryEntry = relative(dist, entry).split(sep).join('/');
} catch {
  // not exported
}
console.log(JSON.stringify({ build, loaded, memoryEntry, mainExportsMemoryBroker: 'memoryBroker' in warren }));

// The library's import rules, checked on every `npm run lint` (npm test runs it first):
//  1. no import cycle between files;
//  2. the folders (and top-level files) of libs/warren/src import only layers below their own, so
//     the data path reads one way: decorators → discovery → topology → connection → consumer,
//     publisher, rpc. `import type` counts: a type that points upward is a design that does.
// A dynamic import() is not counted: it is how the core loads the in-memory broker (an entry point
// on top) only for memory:// URLs.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../libs/warren/src');

// Bottom first. A unit imports only from units in earlier layers (or from itself).
const LAYERS = [
  ['warren.errors', 'warren.constants', 'warren.defaults'],
  ['validation', 'tracing', 'codec'],
  ['telemetry'],
  ['topology'],
  ['contracts'],
  ['warren.options'],
  ['connection'],
  ['publisher'],
  ['consumer'],
  ['rpc'],
  ['decorators'],
  ['registry'],
  ['discovery'],
  ['health'],
  ['warren.tokens'],
  ['warren.module'],
  ['index', 'memory', 'testing', 'microservices', 'outbox', 'asyncapi'],
  ['cli'],
];
const layerOf = new Map(LAYERS.flatMap((units, i) => units.map((u) => [u, i])));

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return files(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') && !entry.name.endsWith('.d.ts')
      ? [path]
      : [];
  });
}

/** `connection` for connection/x.ts, `warren.module` for warren.module.ts. */
function unitOf(file) {
  const rel = relative(root, file).split('/');
  return rel.length > 1 ? rel[0] : rel[0].replace(/\.ts$/, '');
}

// Static `import … from '…'`, `import '…'` and `export … from '…'`; comments stripped first.
const IMPORT = /(?:^|[\s;])(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/g;

function importsOf(file) {
  const text = readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:])\/\/.*$/gm, '$1');
  const out = [];
  for (const match of text.matchAll(IMPORT)) {
    const spec = match[2];
    if (!spec.startsWith('.')) continue;
    out.push({ file: resolve(dirname(file), spec.replace(/\.js$/, '.ts')), typeOnly: match[1] !== undefined });
  }
  return out;
}

const all = files(root);
const graph = new Map(all.map((f) => [f, importsOf(f)]));
const problems = [];

for (const [file, deps] of graph) {
  const from = unitOf(file);
  const fromLayer = layerOf.get(from);
  if (fromLayer === undefined) {
    problems.push(`${relative(root, file)}: "${from}" is in no layer of scripts/check-layers.mjs; add it`);
    continue;
  }
  for (const { file: dep } of deps) {
    if (!graph.has(dep)) {
      problems.push(`${relative(root, file)} imports ${relative(root, dep)}, which does not exist`);
      continue;
    }
    const to = unitOf(dep);
    if (to === from) continue;
    const toLayer = layerOf.get(to);
    if (toLayer !== undefined && toLayer >= fromLayer) {
      problems.push(
        `${relative(root, file)} (${from}) imports ${relative(root, dep)} (${to}): ` +
          `${to} is ${toLayer === fromLayer ? 'in the same layer' : 'a layer above'}; ` +
          `move the shared part down, or the importer up`,
      );
    }
  }
}

// File-level cycles (within a folder too), by depth-first search. Only imports that run count
// here: a cycle through `import type` is erased by the compiler and changes no load order.
const state = new Map();
const stack = [];
function visit(file) {
  state.set(file, 'open');
  stack.push(file);
  for (const { file: dep, typeOnly } of graph.get(file) ?? []) {
    if (typeOnly || !graph.has(dep)) continue;
    if (state.get(dep) === 'open') {
      const cycle = stack.slice(stack.indexOf(dep)).concat(dep);
      problems.push(`import cycle: ${cycle.map((f) => relative(root, f)).join(' → ')}`);
    } else if (!state.has(dep)) visit(dep);
  }
  stack.pop();
  state.set(file, 'done');
}
for (const file of graph.keys()) if (!state.has(file)) visit(file);

if (problems.length > 0) {
  console.error(`libs/warren/src breaks its import rules:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}

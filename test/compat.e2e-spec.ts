import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { brokerUrl, deleteTopology, unique } from './support/broker.js';

// The published package, not the sources: `npm pack` libs/warren, install the tarball into two
// minimal apps under test/compat/ (NestJS 11 CommonJS, NestJS 12 ES modules), boot each against
// the broker and round-trip one message. npm resolves the peer ranges for real (no
// --legacy-peer-deps), so a peer range that excludes either NestJS major fails the install.
// The NestJS 11 app also takes the oldest majors of the other peers (amqp-connection-manager 4,
// amqplib 0.10), the NestJS 12 app the newest (5 and 2).
//
// Each app is also the kind of project `nest new` makes, with its own TypeScript sources and e2e
// tests: NestJS 11 CommonJS with tsc and jest + ts-jest (`isolatedModules`), type-checked under
// both `moduleResolution: node` (which reads the package's typesVersions) and `node16`; NestJS 12
// ESM with vitest (SWC), type-checked under `nodenext` and `bundler` (not `node`: under it vitest's
// own types do not resolve, so no such app can use it). Their e2e tests run on memory:// and on
// the broker of this run.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LIB = join(ROOT, 'libs', 'warren');
const INSTALL_TIMEOUT_MS = 180_000;
const APP_TIMEOUT_MS = 30_000; // the apps give up by themselves after 20 s (+5 s to exit)
const PROJECT_TIMEOUT_MS = 240_000; // a type check and a test run on a loaded 2-core machine

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded by `timeout`), whatever its exit code. */
function run(
  file: string,
  args: string[],
  options: { cwd: string; timeout: number; env?: NodeJS.ProcessEnv },
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { ...options, env: options.env ?? cleanEnv(), maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const failure = err as (Error & { code?: number | string; signal?: NodeJS.Signals }) | null;
        resolve({
          code: failure ? (typeof failure.code === 'number' ? failure.code : null) : 0,
          signal: failure?.signal ?? null,
          // Test runners colour their summary when they see a CI variable or FORCE_COLOR (vitest does, on CI
          // machines): the assertions read the text, not the escape codes around it.
          stdout: stripVTControlCharacters(stdout),
          stderr: stripVTControlCharacters(
            failure && typeof failure.code !== 'number' ? `${failure.message}\n${stderr}` : stderr,
          ),
        });
      },
    );
  });
}

/** Like `run`, but a failure throws with everything the command said. */
async function mustRun(file: string, args: string[], cwd: string, timeout: number): Promise<string> {
  const result = await run(file, args, { cwd, timeout });
  if (result.code !== 0) {
    throw new Error(
      `${file} ${args.join(' ')} (in ${cwd}) failed: code ${result.code}, signal ${result.signal}\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout;
}

/** The environment minus what an enclosing `npm test` exports, so npm in the temp dirs acts as it would for a user. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'NODE_OPTIONS' && k !== 'FORCE_COLOR'),
  );
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Fails with everything the app said unless it exited 0 by itself. */
function expectCleanExit(result: Run): void {
  if (result.code !== 0 || result.signal !== null) {
    throw new Error(
      `app exited with code ${result.code}, signal ${result.signal}\nstderr:\n${result.stderr}\nstdout:\n${result.stdout}`,
    );
  }
}

interface Packed {
  filename: string;
  name: string;
  version: string;
  files: { path: string }[];
}

interface Printed {
  app: string;
  node: string;
  nestCore: string;
  nestCommon: string;
  warren: string;
  loaded?: string[];
  memoryFilesLoaded?: string[];
  memoryEntry: string;
  memoryBroker: string;
  publisherInjected: boolean;
  queue: string;
  contentType: string;
  body: unknown;
}

describe('the packed nestjs-warren in NestJS 11 (CommonJS) and NestJS 12 (ESM) apps', () => {
  const temps: string[] = [];
  const queues: string[] = [];
  const apps: Record<string, string> = {};
  let packed: Packed;

  beforeAll(
    async () => {
      // `npm test` builds the library first; a bare jest run may not have.
      if (!existsSync(join(LIB, 'dist', 'cjs', 'index.js')) || !existsSync(join(LIB, 'dist', 'esm', 'index.js'))) {
        await mustRun('npm', ['run', 'build:lib'], ROOT, INSTALL_TIMEOUT_MS);
      }
      const packDir = await mkdtemp(join(tmpdir(), 'warren-pack-'));
      temps.push(packDir);
      const out = await mustRun('npm', ['pack', '--json', '--pack-destination', packDir], LIB, INSTALL_TIMEOUT_MS);
      [packed] = JSON.parse(out) as Packed[];
      const tarball = join(packDir, packed.filename);

      await Promise.all(
        ['nest11-cjs', 'nest12-esm'].map(async (name) => {
          // Real path: Node reports resolved modules by theirs.
          const dir = await realpath(await mkdtemp(join(tmpdir(), `warren-${name}-`)));
          temps.push(dir);
          await cp(join(ROOT, 'test', 'compat', name), dir, { recursive: true });
          await mustRun(
            'npm',
            ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball],
            dir,
            INSTALL_TIMEOUT_MS,
          );
          apps[name] = dir;
        }),
      );
    },
    2 * INSTALL_TIMEOUT_MS + 60_000,
  );

  afterAll(async () => {
    // The apps' queues are auto-delete; this only matters when an app died before consuming.
    if (queues.length > 0) await deleteTopology({ queues });
    await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('packs both builds, each marked with its module type', async () => {
    expect(packed.name).toBe('nestjs-warren');
    const files = packed.files.map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'dist/cjs/package.json',
        'dist/cjs/index.js',
        'dist/cjs/index.d.ts',
        'dist/esm/package.json',
        'dist/esm/index.js',
        'dist/esm/index.d.ts',
      ]),
    );
    expect(
      files.filter(
        (f) =>
          !f.startsWith('dist/cjs/') &&
          !f.startsWith('dist/esm/') &&
          !['package.json', 'README.md', 'CHANGELOG.md'].includes(f),
      ),
    ).toEqual([]);
    // As installed: what Node reads to decide how to load each build's .js files.
    const installed = join(apps['nest11-cjs'], 'node_modules', 'nestjs-warren', 'dist');
    expect(JSON.parse(await readFile(join(installed, 'cjs', 'package.json'), 'utf8'))).toEqual({ type: 'commonjs' });
    expect(JSON.parse(await readFile(join(installed, 'esm', 'package.json'), 'utf8'))).toEqual({ type: 'module' });
  });

  async function roundTrip(
    name: string,
  ): Promise<{ run: Run; printed: Printed | undefined; payload: unknown; queue: string }> {
    const queue = unique(`compat.${name}`);
    queues.push(queue);
    const payload = {
      app: name,
      nonce: randomUUID(),
      text: 'héllo, wörld ✓',
      n: 42,
      list: [1, null, true, { nested: 'yes' }],
    };
    const result = await run(process.execPath, ['app.js'], {
      cwd: apps[name],
      timeout: APP_TIMEOUT_MS,
      env: cleanEnv({ RABBITMQ_URL: brokerUrl(), COMPAT_QUEUE: queue, COMPAT_PAYLOAD: JSON.stringify(payload) }),
    });
    const line = result.stdout.split('\n').find((l) => l.startsWith(`{"app":"${name}"`));
    return { run: result, printed: line === undefined ? undefined : (JSON.parse(line) as Printed), payload, queue };
  }

  it(
    'NestJS 11, CommonJS: require() loads dist/cjs, boots, and round-trips a message',
    async () => {
      const { run: result, printed, payload, queue } = await roundTrip('nest11-cjs');
      expectCleanExit(result);
      expect(printed).toBeDefined();
      expect(printed!.nestCore).toMatch(/^11\./);
      expect(printed!.nestCommon).toMatch(/^11\./);
      expect(printed!.warren).toBe(
        join(apps['nest11-cjs'], 'node_modules', 'nestjs-warren', 'dist', 'cjs', 'index.js'),
      );
      expect(printed!.loaded).toEqual(['dist/cjs']);
      expect(printed!.memoryFilesLoaded).toEqual([]);
      expect(printed!.memoryEntry).toBe(
        join(apps['nest11-cjs'], 'node_modules', 'nestjs-warren', 'dist', 'cjs', 'memory', 'index.js'),
      );
      expect(printed!.memoryBroker).toBe('function');
      expect(printed!.publisherInjected).toBe(true);
      expect(printed!.queue).toBe(queue);
      expect(printed!.contentType).toBe('application/json');
      expect(printed!.body).toEqual(payload);
    },
    APP_TIMEOUT_MS + 10_000,
  );

  it(
    'NestJS 12, ES modules: import resolves dist/esm, boots, and round-trips a message',
    async () => {
      const { run: result, printed, payload, queue } = await roundTrip('nest12-esm');
      expectCleanExit(result);
      expect(printed).toBeDefined();
      expect(printed!.nestCore).toMatch(/^12\./);
      expect(printed!.nestCommon).toMatch(/^12\./);
      expect(printed!.warren).toBe(
        pathToFileURL(join(apps['nest12-esm'], 'node_modules', 'nestjs-warren', 'dist', 'esm', 'index.js')).href,
      );
      expect(printed!.memoryEntry).toBe(
        pathToFileURL(join(apps['nest12-esm'], 'node_modules', 'nestjs-warren', 'dist', 'esm', 'memory', 'index.js'))
          .href,
      );
      expect(printed!.memoryBroker).toBe('function');
      expect(printed!.publisherInjected).toBe(true);
      expect(printed!.queue).toBe(queue);
      expect(printed!.contentType).toBe('application/json');
      expect(printed!.body).toEqual(payload);
    },
    APP_TIMEOUT_MS + 10_000,
  );

  /** Runs an npm script of an app on the broker of this run; a failure throws with its output. */
  async function npmScript(name: string, script: string): Promise<string> {
    const result = await run('npm', ['run', '--silent', script], {
      cwd: apps[name],
      timeout: PROJECT_TIMEOUT_MS,
      env: cleanEnv({ RABBITMQ_URL: brokerUrl() }),
    });
    if (result.code !== 0) {
      throw new Error(
        `${name}: npm run ${script} failed (code ${result.code}, signal ${result.signal})\n${result.stdout}\n${result.stderr}`,
      );
    }
    return `${result.stdout}\n${result.stderr}`;
  }

  it(
    'NestJS 11, CommonJS: tsc under moduleResolution node and node16, and its jest + ts-jest e2e on memory:// and RabbitMQ',
    async () => {
      await npmScript('nest11-cjs', 'typecheck');
      const output = await npmScript('nest11-cjs', 'test');
      expect(output).toMatch(/Tests:\s+2 passed, 2 total/);
    },
    2 * PROJECT_TIMEOUT_MS,
  );

  it(
    'NestJS 12, ES modules: tsc under nodenext and bundler, and its vitest e2e on memory:// (retries on fake timers too) and RabbitMQ',
    async () => {
      await npmScript('nest12-esm', 'typecheck');
      const output = await npmScript('nest12-esm', 'test');
      expect(output).toMatch(/Tests\s+3 passed \(3\)/);
    },
    2 * PROJECT_TIMEOUT_MS,
  );
});

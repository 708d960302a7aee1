import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brokerUrl, unique } from './support/broker.js';

/**
 * The in-memory broker is its own entry point, `nestjs-warren/memory`, loaded only when an app
 * names a `memory://` URL: an app on RabbitMQ never loads a file of it. Checked on the built
 * package, both builds, in a fresh process each: jest's own module loading would hide the answer.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCRIPT = fileURLToPath(new URL('./support/loaded-files-app.mjs', import.meta.url));

interface Report {
  build: string;
  /** The build's files the process loaded, relative to dist/<build>/. */
  loaded: string[];
  memoryEntry: string | null;
  mainExportsMemoryBroker: boolean;
}

async function bootAndReport(build: 'esm' | 'cjs', url: string): Promise<Report> {
  const { stdout } = await promisify(execFile)(process.execPath, [SCRIPT, build, url], {
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 30_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Report;
}

beforeAll(async () => {
  // `npm test` builds the library first; a bare jest run may not have.
  if (!existsSync(`${ROOT}libs/warren/dist/esm/index.js`) || !existsSync(`${ROOT}libs/warren/dist/cjs/index.js`)) {
    await promisify(execFile)('npm', ['run', 'build:lib'], { cwd: ROOT, timeout: 180_000 });
  }
}, 200_000);

describe.each(['esm', 'cjs'] as const)('the %s build', (build) => {
  it('an app on amqp:// loads no file of the in-memory broker', async () => {
    const report = await bootAndReport(build, brokerUrl());
    // The watch saw the package load (so an empty answer below means something).
    expect(report.loaded).toEqual(
      expect.arrayContaining(['index.js', 'connection/connection-factory.js', 'connection/warren-connection.js']),
    );
    expect(report.loaded.filter((file) => file.startsWith('memory/'))).toEqual([]);
    expect(report.mainExportsMemoryBroker).toBe(false);
    expect(report.memoryEntry).toBe('memory/index.js');
  });

  it('an app on memory:// loads it (so the watch above would have seen it)', async () => {
    const report = await bootAndReport(build, `memory://${unique('entry')}`);
    expect(report.loaded).toEqual(expect.arrayContaining(['memory/memory-transport.js', 'memory/broker.js']));
  });
});

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const SERVER_CANDIDATES = [
  '/usr/lib/rabbitmq/bin/rabbitmq-server',
  '/usr/local/sbin/rabbitmq-server',
  '/opt/homebrew/sbin/rabbitmq-server',
];

/**
 * Runs the rabbitmqctl beside the rabbitmq-server the testing kit starts nodes with (not Debian's
 * wrapper, which switches to another user and cookie) against a local node, as an operator would.
 */
export async function rabbitmqctl(node: string, ...args: string[]): Promise<string> {
  const servers = [process.env.RABBITMQ_SERVER, ...SERVER_CANDIDATES].filter((s): s is string => !!s);
  const server = servers.find((s) => existsSync(s));
  if (!server) throw new Error(`no rabbitmq-server install found (${servers.join(', ')})`);
  const { stdout } = await execFileAsync(join(dirname(server), 'rabbitmqctl'), ['-n', node, ...args], {
    timeout: 60_000,
  });
  return stdout;
}

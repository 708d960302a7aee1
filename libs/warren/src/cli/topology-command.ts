import { bootWithoutBroker, describeTopology } from '../discovery/topology-reader.js';
import type { ConnectionTopology, HandlerTopology, WarrenTopology } from '../registry/topology-view.js';
import { stableJson } from '../topology/stable-json.js';
import { CliError, flag, option, parseArgs, UsageError } from './args.js';
import { toDefinitions } from './definitions.js';
import { type BrokerState, diffTopology } from './diff.js';
import { loadModule } from './load-module.js';
import { ManagementApi } from './management.js';

export const TOPOLOGY_USAGE = `warren topology <module-file> [options]
  Boots the module without a broker and prints the exchanges, queues, bindings and handlers it declares.
  --export <name>        the export of <module-file> to boot (default: its default export, or its one module)
  --json                 print the topology as JSON
  --definitions          print RabbitMQ definitions JSON (rabbitmqctl import_definitions)
  --vhost <vhost>        the vhost of the definitions (default /)
  --diff <broker-url>    compare with a broker through its management API: missing, different, left over
  --management <url>     the management API's URL, when it is not http://<broker host>:15672
  --connection <name>    the connection to export or compare (default: the default connection)`;

/** Prints what `out` is given; the exit code: 0, or 1 when --diff found differences. */
export async function topologyCommand(argv: string[], out: (line: string) => void): Promise<number> {
  const args = parseArgs(argv, ['export', 'vhost', 'diff', 'management', 'connection'], ['json', 'definitions']);
  if (args.positionals.length !== 1) throw new UsageError('warren topology takes one <module-file>');
  const module = await loadModule(args.positionals[0], option(args, 'export'));
  const app = await bootWithoutBroker(module).catch((err: Error) => {
    throw new CliError(`${args.positionals[0]}: the module failed to boot: ${err.message}`);
  });
  let topology: WarrenTopology;
  try {
    topology = describeTopology(app);
  } finally {
    await app.close();
  }
  if (topology.connections.length === 0) {
    throw new CliError(`${args.positionals[0]}: the module imports no WarrenModule: it declares nothing`);
  }
  const diffUrl = option(args, 'diff');
  if (flag(args, 'definitions') || diffUrl) {
    const connection = pick(topology, option(args, 'connection'));
    if (flag(args, 'definitions')) {
      const { definitions, skipped } = toDefinitions(connection, option(args, 'vhost') ?? '/');
      out(JSON.stringify(definitions, null, 2));
      for (const s of skipped)
        process.stderr.write(`warren: not in the definitions: ${s} (RabbitMQ names it at each connection)\n`);
      return 0;
    }
    return diff(connection, diffUrl!, option(args, 'management'), out);
  }
  if (flag(args, 'json')) {
    out(JSON.stringify(topology, (key, value) => (key === 'schema' || key === 'contract' ? undefined : value), 2));
    return 0;
  }
  for (const connection of topology.connections) printConnection(connection, out);
  return 0;
}

function pick(topology: WarrenTopology, name: string | undefined): ConnectionTopology {
  const wanted = name ?? (topology.connections.length === 1 ? topology.connections[0].connection : 'default');
  const found = topology.connections.find((c) => c.connection === wanted);
  if (!found) {
    throw new UsageError(
      `no connection "${wanted}"; the module has ${topology.connections.map((c) => `"${c.connection}"`).join(', ')}: choose one with --connection`,
    );
  }
  return found;
}

async function diff(
  connection: ConnectionTopology,
  url: string,
  management: string | undefined,
  out: (line: string) => void,
): Promise<number> {
  const api = new ManagementApi(url, management);
  const { definitions } = toDefinitions(connection, api.vhost);
  const broker: BrokerState = {
    exchanges: await api.get(api.vhostPath('exchanges')),
    queues: await api.get(api.vhostPath('queues')),
    bindings: await api.get(api.vhostPath('bindings')),
  };
  const result = diffTopology(definitions, broker);
  // Left-overs are reported but do not fail: other apps may share the vhost; nor do Warren's own.
  const sections: [title: string, lines: string[], fails: boolean][] = [
    ['missing (declared by the app, not on the broker)', result.missing, true],
    ['different (on the broker with other properties)', result.different, true],
    ['left over (on the broker, declared by nothing in the app)', result.leftOver, false],
    ["Warren's own (the delay ladder, declared by the app's first delayed publish)", result.warren, false],
  ];
  let differences = 0;
  for (const [title, lines, fails] of sections) {
    if (lines.length === 0) continue;
    out(`${title}:`);
    for (const line of lines) out(`  ${line}`);
    if (fails) differences += lines.length;
  }
  if (result.missing.length + result.different.length + result.leftOver.length === 0) {
    const besides = result.warren.length > 0 ? ", besides Warren's own delay ladder" : '';
    out(`the broker's vhost "${api.vhost}" holds exactly what the app declares${besides}`);
  }
  return differences > 0 ? 1 : 0;
}

const KIND: Record<HandlerTopology['kind'], string> = {
  subscribe: '@Subscribe',
  consume: '@Consume',
  rpc: '@RpcHandler',
};

function printConnection(c: ConnectionTopology, out: (line: string) => void): void {
  const by = (list: string[]) => `  ← ${list.join(', ')}`;
  const args = (a: Record<string, unknown>) => (Object.keys(a).length > 0 ? ` ${stableJson(a)}` : '');
  out(`connection ${c.connection}`);
  out('  exchanges');
  for (const e of c.exchanges) {
    const flags = [
      e.type,
      e.durable ? 'durable' : 'transient',
      e.autoDelete && 'auto-delete',
      e.internal && 'internal',
    ];
    out(`    ${e.name}  ${flags.filter(Boolean).join(' ')}${args(e.arguments)}${by(e.declaredBy)}`);
  }
  out('  queues');
  for (const q of c.queues) {
    const flags = [q.durable ? 'durable' : 'transient', q.exclusive && 'exclusive', q.autoDelete && 'auto-delete'];
    out(`    ${q.name}  ${flags.filter(Boolean).join(' ')}${args(q.arguments)}${by(q.declaredBy)}`);
  }
  for (const h of c.handlers.filter((h) => h.queue.name === '')) {
    out(`    (server-named) exclusive auto-delete${args(h.queue.arguments)}${by([h.label])}`);
  }
  out('  bindings');
  const key = (k: string) => (k === '' ? '(no key)' : k);
  for (const b of c.bindings)
    out(`    ${b.exchange} → ${b.queue}  ${key(b.routingKey)}${args(b.arguments)}${by(b.declaredBy)}`);
  for (const h of c.handlers.filter((h) => h.queue.name === '')) {
    for (const b of h.bindings)
      out(`    ${b.exchange} → (server-named)  ${key(b.routingKey)}${args(b.arguments)}${by([h.label])}`);
  }
  // Older builds of the library (another copy in the app) have no exchange bindings in their view.
  const exchangeBindings = c.exchangeBindings ?? [];
  if (exchangeBindings.length > 0) out('  exchange bindings');
  for (const b of exchangeBindings)
    out(`    ${b.source} → exchange ${b.destination}  ${key(b.routingKey)}${args(b.arguments)}${by(b.declaredBy)}`);
  out('  handlers');
  for (const h of c.handlers) {
    const dl = h.failure.deadLetter
      ? ` → ${h.failure.deadLetter.exchange || ''}${h.failure.deadLetter.exchange ? '/' : ''}${h.failure.deadLetter.routingKey}`
      : '';
    const through = h.failure.retryThrough ? ' through the delay ladder' : '';
    const retries = h.failure.mode === 'retry' ? ` ${h.failure.retryDelays.join('/')} ms${through}` : '';
    out(
      `    ${KIND[h.kind]} ${h.label}  queue ${h.queue.name || '(server-named)'}  prefetch ${h.prefetch}  on failure ${h.failure.mode}${retries}${dl}`,
    );
  }
}

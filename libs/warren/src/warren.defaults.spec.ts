import { readFileSync } from 'node:fs';
import { WARREN_DEFAULTS } from './warren.defaults.js';
import type { WarrenModuleOptions } from './warren.options.js';

// The guide's option table (docs/guide.md, "Setup") against the code: every option of
// WarrenModuleOptions has a row, and every default a row states is the one WARREN_DEFAULTS holds.

/** Options that group others: the table has a row per member (`rpc.timeoutMs`). */
type Group = 'rpc' | 'failure' | 'queues' | 'streams' | 'delayLadder' | 'tls';

/** Every option path of WarrenModuleOptions, groups spelled out member by member. */
type OptionPath = {
  [K in keyof WarrenModuleOptions & string]-?: K extends Group
    ? `${K}.${keyof NonNullable<WarrenModuleOptions[K]> & string}`
    : K;
}[keyof WarrenModuleOptions & string];

/** Every value of WARREN_DEFAULTS by its path (`rpc.timeoutMs`). */
type DefaultPath<T, Prefix extends string = ''> = {
  [K in keyof T & string]: T[K] extends object
    ? T[K] extends readonly unknown[]
      ? `${Prefix}${K}`
      : DefaultPath<T[K], `${Prefix}${K}.`>
    : `${Prefix}${K}`;
}[keyof T & string];

/** A default the code computes rather than holds: the table states it as this text. */
interface Derived {
  derived: string;
}

/**
 * Where each option's default is: its path in WARREN_DEFAULTS, a derived default, or null for none.
 * `satisfies` makes this the type test: an option added to WarrenModuleOptions (or to one of its
 * groups) and not listed here, or a listed one that is gone, fails `tsc` on this object, by name.
 */
const DEFAULT_OF = {
  connection: 'connection',
  name: 'connection',
  url: null,
  urls: null,
  // Node's tls.connect() trusts its bundled CAs when given none.
  'tls.ca': { derived: "<Node's CAs>" },
  'tls.cert': null,
  'tls.key': null,
  'tls.passphrase': null,
  // amqplib sets it to the URL's host when that is a name (not for an IP address).
  'tls.servername': { derived: "<the URL's host>" },
  'tls.rejectUnauthorized': 'tls.rejectUnauthorized',
  auth: 'auth',
  prefetch: 'prefetch',
  // topology/concurrency.ts: as many as the consumer's prefetch.
  concurrency: { derived: '<prefetch>' },
  heartbeatSeconds: 'heartbeatSeconds',
  reconnectDelayMs: 'reconnectDelayMs',
  resubscribeDelaysMs: 'resubscribeDelaysMs',
  connectTimeoutMs: 'connectTimeoutMs',
  waitForBroker: 'waitForBroker',
  clientProvidedName: 'connectionName',
  connectionName: 'connectionName',
  handlers: null,
  topology: null,
  codecs: null,
  maxMessageBytes: 'maxMessageBytes',
  maxBufferedPublishes: 'maxBufferedPublishes',
  shutdownTimeoutMs: 'shutdownTimeoutMs',
  'failure.mode': 'failure.mode',
  'failure.retryDelays': 'failure.retryDelays',
  'failure.requeueDelayMs': 'failure.requeueDelayMs',
  // topology/failure-policy.ts names it after the queue.
  'failure.deadLetterQueue': { derived: '<queue>.dlq' },
  'failure.deadLetterExchange': null,
  'failure.retryThrough': 'failure.retryThrough',
  'queues.type': 'queues.type',
  // consumer/stream-offsets.ts: InMemoryStreamOffsetStore, one per connection.
  'streams.offsetStore': { derived: 'in-memory' },
  'delayLadder.unitMs': 'delayLadder.unitMs',
  'delayLadder.levels': 'delayLadder.levels',
  'rpc.replyQueue': 'rpc.replyQueue',
  'rpc.timeoutMs': 'rpc.timeoutMs',
} satisfies Record<OptionPath, DefaultPath<typeof WARREN_DEFAULTS> | Derived | null>;

const NO_DEFAULT = '—';

interface Row {
  options: string[];
  default: string;
}

/** The rows of the table whose header is `| option | default | meaning |`. */
function optionTable(markdown: string): Row[] {
  const lines = markdown.split('\n');
  const header = lines.findIndex((line) => /^\|\s*option\s*\|\s*default\s*\|\s*meaning\s*\|$/.test(line.trim()));
  if (header === -1) throw new Error('docs/guide.md has no "| option | default | meaning |" table');
  const rows: Row[] = [];
  // The line after the header is the |---| rule.
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const [option, value] = line
      .slice(1)
      .split('|')
      .map((cell) => cell.trim());
    rows.push({ options: [...option.matchAll(/`([^`]+)`/g)].map((m) => m[1]), default: value });
  }
  return rows;
}

/** A default as the table writes it: `text`, 20, 16 MiB, 1000, 5000, 30000, true, or — for none. */
function readDefault(cell: string): unknown {
  if (cell === NO_DEFAULT) return undefined;
  if (cell === 'true' || cell === 'false') return cell === 'true';
  const code = /^`([^`]+)`$/.exec(cell);
  if (code) return code[1];
  const mib = /^(\d+) MiB$/.exec(cell);
  if (mib) return Number(mib[1]) * 1024 * 1024;
  if (/^\d+(, \d+)*$/.test(cell)) {
    const numbers = cell.split(', ').map(Number);
    return numbers.length === 1 ? numbers[0] : numbers;
  }
  throw new Error(`cannot read the default "${cell}"`);
}

function defaultAt(path: string): unknown {
  let value: unknown = WARREN_DEFAULTS;
  for (const key of path.split('.')) value = (value as Record<string, unknown>)[key];
  return value;
}

function leafPaths(value: object, prefix = ''): string[] {
  return Object.entries(value).flatMap(([key, inner]) =>
    inner !== null && typeof inner === 'object' && !Array.isArray(inner)
      ? leafPaths(inner as object, `${prefix}${key}.`)
      : [`${prefix}${key}`],
  );
}

const guide = readFileSync(new URL('../../../docs/guide.md', import.meta.url), 'utf8');
const rows = optionTable(guide);
const listed = rows.flatMap((row) => row.options.map((option) => ({ option, default: row.default })));
const options: [string, string | Derived | null][] = Object.entries(DEFAULT_OF);

describe("the guide's option table", () => {
  it('lists every option of WarrenModuleOptions once, and nothing else', () => {
    expect(listed.map((entry) => entry.option).sort()).toEqual(options.map(([option]) => option).sort());
  });

  it.each(options)('states the default of %s as the code has it', (option, where) => {
    const cell = listed.find((entry) => entry.option === option)?.default;
    expect(cell).toBeDefined();
    const expected = where === null ? undefined : typeof where === 'string' ? defaultAt(where) : where.derived;
    expect(readDefault(cell!)).toEqual(expected);
  });

  it('has a row for every default in WARREN_DEFAULTS', () => {
    const documented = options.flatMap(([, where]) => (typeof where === 'string' ? [where] : []));
    // An option and its older alias share one default.
    expect([...new Set(documented)].sort()).toEqual(leafPaths(WARREN_DEFAULTS).sort());
  });
});

import type { AmqpConnectionManager, AmqpConnectionManagerOptions } from 'amqp-connection-manager';
import { WarrenConnectionError } from '../warren.errors.js';
import type { WarrenModuleOptions } from '../warren.options.js';
import { amqpTransport } from './amqp-transport.js';
import { redactCredentials } from './redact.js';
import { schemeOf, type Transport } from './transport.js';

/** The transports Warren knows, by the URL schemes that select them. */
const TRANSPORTS: readonly { schemes: readonly string[]; load: () => Promise<Transport> }[] = [
  { schemes: ['amqp', 'amqps'], load: () => Promise.resolve(amqpTransport) },
  // Loaded only for an app that names it, so an app on RabbitMQ never loads the in-memory
  // broker's code. The one deliberate upward import of the library.
  { schemes: ['memory'], load: () => import('../memory/memory-transport.js').then((m) => m.memoryTransport) },
];

const SCHEMES = TRANSPORTS.flatMap((t) => t.schemes);

/** The broker URLs of the options, each of a scheme some transport serves. */
export function brokerUrls(options: WarrenModuleOptions): string[] {
  const urls = options.urls ?? (options.url ? [options.url] : []);
  if (urls.length === 0)
    throw new WarrenConnectionError('WarrenModule: give `url` or `urls` (e.g. amqp://127.0.0.1:5672)');
  for (const url of urls) {
    if (typeof url !== 'string' || !SCHEMES.includes(schemeOf(url) ?? '')) {
      const schemes = SCHEMES.map((s) => `${s}://`);
      throw new WarrenConnectionError(
        `WarrenModule: broker URL ${typeof url === 'string' ? `"${redactCredentials(url)}"` : String(url)} must start with ${schemes.slice(0, -1).join(', ')} or ${schemes.at(-1)}`,
      );
    }
    const misread = misreadUserinfo(url);
    if (misread) {
      throw new WarrenConnectionError(
        `WarrenModule: broker URL "${misread}" has an '@' after its host: percent-encode a '/', '?' or '#' in the user name or password (encodeURIComponent)`,
      );
    }
  }
  return urls;
}

/**
 * The URL without its userinfo, when a parser would read part of the password as the host, port
 * or path (an unencoded '/', '?' or '#' in it): connecting with it would send that part to a DNS
 * lookup and into error messages. Undefined for a URL that parses as written.
 */
function misreadUserinfo(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (!`${parsed.pathname}${parsed.search}${parsed.hash}`.includes('@')) return undefined;
  const start = url.indexOf('://') + 3;
  return `${url.slice(0, start)}***${url.slice(url.lastIndexOf('@'))}`;
}

/**
 * The transport of one connection's `urls` (checked by `brokerUrls`), chosen by the first URL's
 * scheme, once it has agreed to serve all of them.
 */
export async function transportFor(urls: readonly string[]): Promise<Transport> {
  const scheme = schemeOf(urls[0] ?? '');
  const entry = TRANSPORTS.find((t) => scheme !== undefined && t.schemes.includes(scheme));
  if (!entry) throw new WarrenConnectionError(`WarrenModule: no transport serves ${scheme ?? 'this'}:// URLs`);
  const transport = await entry.load();
  const problem = transport.urlsProblem(urls);
  if (problem) throw new WarrenConnectionError(`WarrenModule: ${problem}`);
  return transport;
}

/** The connection manager Warren would use for `urls`, not yet connected. */
export async function createConnectionManager(
  urls: string[],
  options: AmqpConnectionManagerOptions,
): Promise<AmqpConnectionManager> {
  return (await transportFor(urls)).createConnectionManager(urls, options);
}

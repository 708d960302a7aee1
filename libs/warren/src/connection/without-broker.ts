import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * A boot "without a broker": every WarrenConnection constructed inside `runWithoutBroker()`
 * connects to the given private in-memory broker instead of the URLs of its options (which are
 * still checked). The app then boots exactly as it would on RabbitMQ — discovery, the topology
 * builder's checks, declarations, consumers — with nothing leaving the process: what the topology
 * read-out (AsyncAPI, `warren topology`) boots apps with.
 *
 * An AsyncLocalStorage, so an app booting normally beside it in the same process is not
 * affected; kept on globalThis under a global symbol, so the ESM and the CommonJS build of the
 * library (the CLI's and the app's may differ) see one store.
 */
const KEY = Symbol.for('nestjs-warren.without-broker');

interface Replacement {
  url: string;
  /** Every connection that took the replacement: a boot that fails half-way has no app to close them. */
  opened: Set<{ close(): Promise<void> }>;
}

function storage(): AsyncLocalStorage<Replacement> {
  const holder = globalThis as { [KEY]?: AsyncLocalStorage<Replacement> };
  return (holder[KEY] ??= new AsyncLocalStorage<Replacement>());
}

/**
 * Runs `boot` so that the connections it constructs use the in-memory broker `memoryUrl`. When
 * `boot` fails, those connections are closed before the error is passed on.
 */
export async function runWithoutBroker<T>(memoryUrl: string, boot: () => Promise<T>): Promise<T> {
  const replacement: Replacement = { url: memoryUrl, opened: new Set() };
  try {
    return await storage().run(replacement, boot);
  } catch (err) {
    await Promise.all([...replacement.opened].map((c) => c.close().catch(() => undefined)));
    throw err;
  }
}

/**
 * The in-memory broker `connection` uses instead of its options' URLs, inside
 * `runWithoutBroker()`; undefined outside.
 */
export function brokerReplacement(connection: { close(): Promise<void> }): string | undefined {
  const replacement = storage().getStore();
  replacement?.opened.add(connection);
  return replacement?.url;
}

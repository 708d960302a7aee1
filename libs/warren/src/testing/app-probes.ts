import type { INestApplicationContext } from '@nestjs/common';
import type { Channel } from 'amqplib';
import { WarrenConnection } from '../connection/warren-connection.js';
import { ConsumerRegistry } from '../registry/consumer-registry.js';
import type { HandledMessage } from '../consumer/message-consumer.js';
import { Publisher, type PublishedMessage } from '../publisher/publisher.js';
import { warrenToken } from '../warren.tokens.js';
import { DEFAULT_CONNECTION } from '../warren.options.js';
import { MessageLog } from './message-log.js';

export interface RecordHandledOptions {
  /** Only the handler named like `OrdersService.onPlaced`. */
  label?: string;
  /** The named connection whose handlers to record. Default: the default connection. */
  connection?: string;
}

/**
 * Records every delivery the app's handlers settle from now on (all handlers, or the one named
 * like `OrdersService.onPlaced`): `await handled.waitForCount(3)`, `await handled.waitFor(m => ...)`.
 * One connection's handlers only: `recordHandled(app, { connection: 'billing' })`. A label that
 * names no handler of the connection throws at once, listing the handlers there are.
 */
export function recordHandled(
  app: INestApplicationContext,
  labelOrOptions?: string | RecordHandledOptions,
): MessageLog<HandledMessage> {
  const { label, connection = DEFAULT_CONNECTION } =
    typeof labelOrOptions === 'string' ? { label: labelOrOptions } : (labelOrOptions ?? {});
  const registry = app.get<ConsumerRegistry>(warrenToken(ConsumerRegistry, connection));
  if (label !== undefined) {
    // A label that names no handler would make every wait time out saying nothing: say it now.
    const labels = [...new Set(registry.list().map((c) => c.label))].sort();
    if (!labels.includes(label)) {
      throw new Error(
        `recordHandled(): no handler "${label}" on the connection "${connection}"; its handlers are ` +
          `${labels.length > 0 ? labels.join(', ') : '(none: is the app initialized?)'}. Labels are Class.method, ` +
          `or the label of a runtime subscription (made before recording)`,
      );
    }
  }
  const log: MessageLog<HandledMessage> = new MessageLog(() => unsubscribe());
  const unsubscribe = registry.observe((event) => {
    if (label === undefined || event.label === label) log.push(event);
  });
  return log;
}

export interface CapturedMessage extends PublishedMessage {
  /** The body decoded by its content type, as a handler would receive it. */
  payload: unknown;
}

/**
 * Records every message the app's `Publisher` publishes (once the broker confirmed it) from now
 * on; that of the named `connection` when given.
 */
export function recordPublished(
  app: INestApplicationContext,
  connection = DEFAULT_CONNECTION,
): MessageLog<CapturedMessage> {
  const log: MessageLog<CapturedMessage> = new MessageLog(() => unsubscribe());
  const publisher = app.get<Publisher>(warrenToken(Publisher, connection));
  const unsubscribe = publisher.observe((message) => {
    let payload: unknown;
    try {
      payload = publisher.codecs.decode(message.content, message.properties.contentType);
    } catch {
      payload = message.content;
    }
    log.push({ ...message, payload });
  });
  return log;
}

/**
 * Empties (`purge`) or removes (`delete`) every queue the app declared, and with `delete` its
 * exchanges too, so the next test starts from a clean broker. Built-in `amq.*` exchanges are left
 * alone. Deleting queues an app still consumes cancels its consumers: do it after `app.close()`
 * or for a fresh boot. A named `connection`'s topology, on its own broker or vhost, when given.
 */
export async function resetDeclaredTopology(
  app: INestApplicationContext,
  mode: 'purge' | 'delete' = 'purge',
  connectionName = DEFAULT_CONNECTION,
): Promise<void> {
  const { queues, exchanges } = app.get<ConsumerRegistry>(warrenToken(ConsumerRegistry, connectionName)).declared();
  const warren = app.get<WarrenConnection>(warrenToken(WarrenConnection, connectionName));
  if (!warren.isConnected('publish')) throw new Error('resetDeclaredTopology: the app is not connected to its broker');
  // One channel per operation: a failed one (queue already gone) closes only its own channel.
  const attempt = (op: (ch: Channel) => Promise<unknown>) =>
    warren.withChannel('publish', (ch) => op(ch).catch(() => undefined));
  for (const queue of queues) await attempt((ch) => (mode === 'purge' ? ch.purgeQueue(queue) : ch.deleteQueue(queue)));
  if (mode === 'delete') {
    for (const exchange of exchanges.filter((e) => !e.startsWith('amq.')))
      await attempt((ch) => ch.deleteExchange(exchange));
  }
}

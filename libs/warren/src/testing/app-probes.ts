import type { INestApplicationContext } from '@nestjs/common';
import { WarrenConnection } from '../connection/warren-connection.js';
import { ConsumerRegistry } from '../consumer/consumer-registry.js';
import { decodePayload } from '../consumer/message-codec.js';
import type { HandledMessage } from '../consumer/message-consumer.js';
import { Publisher, type PublishedMessage } from '../publisher/publisher.js';
import { MessageLog } from './message-log.js';

/**
 * Records every delivery the app's handlers settle from now on (all handlers, or the one named
 * like `OrdersService.onPlaced`): `await handled.waitForCount(3)`, `await handled.waitFor(m => ...)`.
 */
export function recordHandled(app: INestApplicationContext, label?: string): MessageLog<HandledMessage> {
  const registry = app.get(ConsumerRegistry);
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

/** Records every message the app publishes (once the broker confirmed it) from now on. */
export function recordPublished(app: INestApplicationContext): MessageLog<CapturedMessage> {
  const log: MessageLog<CapturedMessage> = new MessageLog(() => unsubscribe());
  const unsubscribe = app.get(Publisher).observe((message) => {
    let payload: unknown;
    try {
      payload = decodePayload(message.content, message.properties.contentType);
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
 * or for a fresh boot.
 */
export async function resetDeclaredTopology(
  app: INestApplicationContext,
  mode: 'purge' | 'delete' = 'purge',
): Promise<void> {
  const { queues, exchanges } = app.get(ConsumerRegistry).declared();
  const live = app.get(WarrenConnection).manager('publish').connection;
  if (!live) throw new Error('resetDeclaredTopology: the app is not connected to its broker');
  const connection = live;
  // One channel per operation: a failed one (queue already gone) closes only its own channel.
  const attempt = async (op: (ch: Awaited<ReturnType<typeof connection.createChannel>>) => Promise<unknown>) => {
    const ch = await connection.createChannel();
    ch.on('error', () => undefined);
    await op(ch).catch(() => undefined);
    await ch.close().catch(() => undefined);
  };
  for (const queue of queues) await attempt((ch) => (mode === 'purge' ? ch.purgeQueue(queue) : ch.deleteQueue(queue)));
  if (mode === 'delete') {
    for (const exchange of exchanges.filter((e) => !e.startsWith('amq.')))
      await attempt((ch) => ch.deleteExchange(exchange));
  }
}

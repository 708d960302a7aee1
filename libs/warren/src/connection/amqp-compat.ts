import type { AmqpConnectionManager, ChannelWrapper } from 'amqp-connection-manager';
import type { Duplex, Writable } from 'node:stream';

/**
 * Everything Warren relies on in amqplib and amqp-connection-manager that they do not promise:
 * private fields, a patched socket method, and error texts told apart by their words. Read from
 * amqplib 2.3.1 and amqp-connection-manager 5.0.0; `amqp-compat.spec.ts` pins every entry
 * against the installed versions, so an upgrade that changes one fails a test instead of
 * silently changing what Warren does. Nothing else in Warren may touch these internals.
 */

/**
 * amqplib fails every unconfirmed publish of a confirm channel with this error when the channel
 * closes, whatever closed it (lib/channel.js, `ConfirmChannel` close handling). It carries no
 * code, so the text is all there is to tell it from a publish that failed for its own reason.
 */
export const PUBLISH_CHANNEL_CLOSED = 'channel closed';

/** amqplib's error for a publish the broker answered with basic.nack (lib/channel.js). */
export const PUBLISH_NACKED = 'message nacked';

export function isChannelClosedOnPublish(err: unknown): boolean {
  return err instanceof Error && err.message === PUBLISH_CHANNEL_CLOSED;
}

export function isPublishNacked(err: unknown): boolean {
  return err instanceof Error && err.message === PUBLISH_NACKED;
}

/**
 * True when the broker refused an operation: amqplib puts the AMQP reply code of the server's
 * channel.close or connection.close on the error's `code` (404 NOT_FOUND, 406
 * PRECONDITION_FAILED, 403 ACCESS_REFUSED...). False when the channel or connection merely went
 * away underneath it ("Channel ended", "Channel closed"): the first is the app's mistake and must
 * be reported; the second heals itself, since every channel setup re-runs after the reconnect.
 */
export function isBrokerRefusal(err: unknown): boolean {
  return typeof (err as { code?: unknown } | null)?.code === 'number';
}

/**
 * The exchange a broker refusal names, from RabbitMQ's reply text ("NOT_FOUND - no exchange 'x'
 * in vhost '/'", "ACCESS_REFUSED - access to exchange 'x' in vhost '/' refused for user 'u'"):
 * the only place the broker says which publish of a channel it refused. Undefined when the text
 * names no exchange.
 */
export function exchangeNamedBy(refusal: Error): string | undefined {
  return /exchange '(.*?)' in vhost/.exec(refusal.message)?.[1];
}

/**
 * The queue a broker refusal names, from RabbitMQ's reply text ("PRECONDITION_FAILED -
 * inequivalent arg 'durable' for queue 'q.dlq' in vhost '/': ...", "RESOURCE_LOCKED - cannot
 * obtain exclusive access to locked queue 'q' in vhost '/'"): a consumer declares several queues
 * (its own, its dead-letter queue, the retry queues), and only the text says which was refused.
 */
export function queueNamedBy(refusal: Error): string | undefined {
  return /queue '(.*?)' in vhost/.exec(refusal.message)?.[1];
}

/**
 * Connection failures no retry can mend: RabbitMQ's ACCESS_REFUSED (bad credentials) and
 * NOT_ALLOWED (vhost access) in the text of amqplib's handshake error.
 */
const REFUSED_LOGIN = /ACCESS.REFUSED|NOT.ALLOWED|vhost .* not found/i;

/**
 * amqplib's whole account of a vhost that does not exist, or that this user may not open: the
 * handshake expected connection.open-ok and got connection.close (lib/connection.js, `Expected
 * %s; got %s`), with no reply code on the error.
 */
const REFUSED_VHOST = /Expected ConnectionOpenOk; got <ConnectionClose/;

/** Why connecting can never succeed with these settings, or undefined when a retry may succeed. */
export function unrecoverableConnectError(err: Error): Error | undefined {
  if (REFUSED_LOGIN.test(err.message)) return err;
  if (REFUSED_VHOST.test(err.message)) {
    return new Error(
      'the broker refused to open the virtual host (it does not exist, or this user has no access to it)',
    );
  }
  return undefined;
}

/**
 * The socket under an amqplib connection (`ChannelModel.connection.stream`, no public accessor),
 * for write coalescing and for knowing when a dead link has really gone.
 */
export function socketOf(connection: unknown): Duplex | undefined {
  return (connection as { connection?: { stream?: Duplex } } | undefined)?.connection?.stream;
}

const COALESCING = Symbol('warren.writeCoalescing');

/**
 * Makes all the frames amqplib writes to a socket in one tick leave in one system call. amqplib
 * writes each frame (a publish is three: method, header, body; then every ack) with its own
 * `stream.write`, and with Nagle off each becomes its own `write(2)`: under load that syscall is
 * the largest single cost of the whole process. Wrapping the socket's `write` to cork on the first
 * write of a tick and uncork at the end of it batches them without holding anything back past the
 * current tick. amqplib offers no hook for it.
 */
export function coalesceWrites(stream: Writable | undefined): void {
  if (!stream || typeof stream.cork !== 'function' || (stream as unknown as Record<symbol, boolean>)[COALESCING])
    return;
  (stream as unknown as Record<symbol, boolean>)[COALESCING] = true;
  const write = stream.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    stream.uncork();
  };
  stream.write = function (this: Writable, ...args: unknown[]): boolean {
    if (!corked) {
      corked = true;
      stream.cork();
      process.nextTick(uncork);
    }
    return (write as (...a: unknown[]) => boolean).apply(stream, args);
  } as Writable['write'];
}

/** amqp-connection-manager's ChannelWrapper internals that reopening a channel needs. */
interface ChannelWrapperInternals {
  /** What the wrapper runs on every connect: opens a channel and re-runs every setup. */
  _onConnect?: (event: { connection: unknown }) => Promise<void>;
  /** The live amqplib channel; undefined once it closed. */
  _channel?: unknown;
}

/**
 * Opens a fresh channel in `wrapper`, with every setup re-run, after the broker closed its channel
 * while the connection stayed up. amqp-connection-manager only does that on a reconnect, so the
 * wrapper would stay without a channel for good (jwalton/node-amqp-connection-manager#347): its
 * private `_onConnect` is the one way in. Without it (another version), reconnecting re-creates
 * every channel of the connection.
 */
export function reopenChannel(wrapper: ChannelWrapper, manager: AmqpConnectionManager): void {
  const internals = wrapper as unknown as ChannelWrapperInternals;
  if (typeof internals._onConnect !== 'function') {
    manager.reconnect();
    return;
  }
  // Unless a reconnect got there first.
  if (internals._channel === undefined) void internals._onConnect({ connection: manager.connection });
}

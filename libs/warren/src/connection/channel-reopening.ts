import type { AmqpConnectionManager, ChannelWrapper } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import type { Transport } from './transport.js';

/**
 * When the broker closes one channel (a publish to an unknown exchange, an ack of an unknown
 * delivery tag, a refused declaration), amqp-connection-manager leaves its wrapper without a
 * channel until the whole connection reconnects, which may be never: every later publish on it
 * waits for ever, a consumer on it stays silent. (jwalton/node-amqp-connection-manager#347.)
 * This watches each channel of `wrapper` and opens a fresh one, with every setup re-run, `delayMs`
 * after such a close (each transport knows how: `Transport.reopenChannel`); a close caused by a
 * lost connection is left to the reconnect.
 *
 * `onRefused` is told the broker's reason when the channel closes, synchronously: amqplib fails the
 * channel's pending publishes in the same 'close' event, and their callers read the reason after it.
 *
 * Returns the cancel function, for when the wrapper is closed on purpose.
 */
export function reopenWhenRefused(
  wrapper: ChannelWrapper,
  manager: AmqpConnectionManager,
  transport: Transport,
  delayMs: number,
  onRefused: (err: Error) => void,
): () => void {
  let cancelled = false;
  let timer: NodeJS.Timeout | undefined;
  const watch = (channel: Channel) => {
    let refusal: Error | undefined;
    // With a listener here, a refusal closes just this channel; without one, amqplib's frame
    // loop throws and takes the whole connection (and every other channel on it) down.
    channel.on('error', (err: Error) => (refusal = err));
    channel.once('close', () => {
      if (!refusal || cancelled) return;
      onRefused(refusal);
      timer = setTimeout(() => {
        timer = undefined;
        if (!cancelled && manager.isConnected()) transport.reopenChannel(wrapper, manager);
      }, delayMs);
    });
  };
  wrapper.addSetup(watch).catch(() => undefined);
  return () => {
    cancelled = true;
    clearTimeout(timer);
  };
}

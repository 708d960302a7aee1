import type { Writable } from 'node:stream';

const COALESCING = Symbol('warren.writeCoalescing');

/**
 * Makes all the frames written to a socket in one tick leave in one system call. amqplib writes
 * each frame (a publish is three: method, header, body; then every ack) with its own
 * `socket.write`, and with Nagle off each becomes its own `write(2)`: under load that syscall is the
 * largest single cost of the whole process. Corking on the first write of a tick and uncorking at
 * the end of it batches them without holding anything back past the current tick.
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

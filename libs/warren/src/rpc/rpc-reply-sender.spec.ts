import type { Logger } from '@nestjs/common';
import type { WarrenConnection } from '../connection/warren-connection.js';
import { RpcReplySender } from './rpc-reply-sender.js';

/** One publish the fake channel was asked for, settled by the test. */
interface Sent {
  replyTo: string;
  confirm(): void;
  fail(err: Error): void;
}

/**
 * A WarrenConnection and reply channel whose publishes the test confirms or fails, and whose
 * connection it loses: what amqplib and amqp-connection-manager do is pinned by amqp-compat.spec.ts
 * and replayed on the broker by test/rpc-reply-path.e2e-spec.ts; this pins the order of sends.
 */
function fakes() {
  const sent: Sent[] = [];
  const listeners: Record<string, (payload: { err?: Error }) => void> = {};
  const channel = {
    publish: (_exchange: string, replyTo: string) =>
      new Promise<void>((resolve, reject) => sent.push({ replyTo, confirm: resolve, fail: reject })),
  };
  const connection = {
    createChannel: () => channel,
    onEvent: (_role: string, event: string, listener: (payload: { err?: Error }) => void) => {
      listeners[event] = listener;
      return () => undefined;
    },
  } as unknown as WarrenConnection;
  const warnings: string[] = [];
  const logger = { warn: (line: string) => warnings.push(line) } as unknown as Logger;
  const internalError = Object.assign(new Error('Connection closed: 541 (INTERNAL-ERROR)'), { code: 541 });
  /** The connection closes the way RabbitMQ 3.10 closes it on a reply to a dead node. */
  const crash = () => {
    const inFlight = sent.splice(0);
    for (const s of inFlight) s.fail(new Error('channel closed'));
    listeners.disconnect({ err: internalError });
  };
  return { sender: new RpcReplySender(connection, logger), sent, crash, warnings };
}

/** Lets the sender's promise chains and its wait for the connection's reason (a setImmediate) run. */
async function flush(): Promise<void> {
  for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
}
const DEAD = 'amq.rabbitmq.reply-to.DEADCHANNEL';
const LIVE = 'amq.rabbitmq.reply-to.LIVECHANNEL';

describe('RpcReplySender', () => {
  it('a reply that crashes the connection is found alone and dropped; the replies lost with it are sent again', async () => {
    const { sender, sent, crash, warnings } = fakes();
    const props = {};
    const outcomes = [
      sender.send(`${DEAD}.k1`, Buffer.from('a'), props),
      sender.send(`${DEAD}.k2`, Buffer.from('b'), props),
      sender.send(`${LIVE}.k3`, Buffer.from('c'), props),
      sender.send(`${LIVE}.k4`, Buffer.from('d'), props),
    ];
    await flush();
    expect(sent.map((s) => s.replyTo)).toEqual([`${DEAD}.k1`, `${DEAD}.k2`, `${LIVE}.k3`, `${LIVE}.k4`]);
    crash();
    await flush();
    // Sent again one at a time: the first alone, and it crashes the connection again.
    expect(sent.map((s) => s.replyTo)).toEqual([`${DEAD}.k1`]);
    // A reply made meanwhile waits for the lane.
    const later = sender.send(`${LIVE}.k5`, Buffer.from('e'), props);
    crash();
    await flush();
    // The dead channel's other reply is dropped unsent; the live ones go, still one at a time.
    expect(sent.map((s) => s.replyTo)).toEqual([`${LIVE}.k3`]);
    sent.shift()!.confirm();
    await flush();
    expect(sent.map((s) => s.replyTo)).toEqual([`${LIVE}.k4`]);
    sent.shift()!.confirm();
    await flush();
    expect(sent.map((s) => s.replyTo)).toEqual([`${LIVE}.k5`]);
    sent.shift()!.confirm();
    expect(await Promise.all([...outcomes, later])).toEqual([
      { sent: false, reason: 'dead-destination' },
      { sent: false, reason: 'dead-destination' },
      { sent: true },
      { sent: true },
      { sent: true },
    ]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/reply-to\.DEADCHANNEL\.k1 makes the broker close the connection/);
    // Nothing more goes to the dead channel.
    expect(await sender.send(`${DEAD}.k6`, Buffer.from('f'), props)).toEqual({
      sent: false,
      reason: 'dead-destination',
    });
    expect(sent).toEqual([]);
  });

  it('a reply lost with a connection that merely died is sent again, at most 3 times', async () => {
    const { sender, sent } = fakes();
    const outcome = sender.send(`${LIVE}.k1`, Buffer.from('a'), {});
    for (let attempt = 1; attempt <= 3; attempt++) {
      await flush();
      expect(sent).toHaveLength(1);
      sent.shift()!.fail(new Error('channel closed'));
    }
    expect(await outcome).toEqual({ sent: false, reason: 'attempts-exhausted' });
  });
});

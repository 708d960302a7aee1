import { Injectable } from '@nestjs/common';
import amqplib from 'amqplib';
import { Consume, TopologyError } from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, management, unique } from './support/broker.js';

// A consumer declares several queues: its own, its dead-letter queue, the shared retry queues.
// When the broker refuses one, the boot error names the one the broker named.

const EVENTS = unique('e2e.declare.order-events');
const DLQ = `${EVENTS}.dlq`;

@Injectable()
class Handlers {
  // Non-durable, so its dead-letter queue is declared non-durable too.
  @Consume(EVENTS, { durable: false })
  on() {}
}

afterAll(() => deleteTopology({ queues: [EVENTS, DLQ] }));

describe('a declaration the broker refuses', () => {
  it("names the queue the broker named: the dead-letter queue, not the handler's queue", async () => {
    // A durable dead-letter queue left by an earlier run with other settings.
    const connection = await amqplib.connect(brokerUrl());
    await (await connection.createChannel()).assertQueue(DLQ, { durable: true });
    await connection.close();

    const boot = bootApp({ providers: [Handlers] });
    await expect(boot).rejects.toBeInstanceOf(TopologyError);
    await expect(boot).rejects.toThrow(
      new RegExp(
        `^Handlers\\.on: the broker refused the declaration of queue "${DLQ.replace(/\./g, '\\.')}": .*` +
          `PRECONDITION_FAILED - inequivalent arg 'durable' for queue '${DLQ.replace(/\./g, '\\.')}' in vhost '/'`,
      ),
    );
  });
});

describe('a dead-letter queue', () => {
  const TRANSIENT = unique('e2e.declare.transient');
  const KEPT = unique('e2e.declare.kept');
  const LONG = `e2e.declare.long.${'q'.repeat(252 - 'e2e.declare.long.'.length)}`;

  @Injectable()
  class Durabilities {
    @Consume(TRANSIENT, { durable: false })
    onTransient() {}

    @Consume(KEPT)
    onKept() {}
  }

  @Injectable()
  class LongName {
    @Consume(LONG)
    on() {}
  }

  afterAll(() => deleteTopology({ queues: [TRANSIENT, `${TRANSIENT}.dlq`, KEPT, `${KEPT}.dlq`, LONG] }));

  it('is as durable as its queue, on the broker', async () => {
    const app = await bootApp({ providers: [Durabilities] });
    try {
      const durable = async (queue: string) =>
        (await management<{ durable: boolean }>(`/api/queues/%2F/${encodeURIComponent(queue)}`)).durable;
      expect(await durable(TRANSIENT)).toBe(false);
      expect(await durable(`${TRANSIENT}.dlq`)).toBe(false);
      expect(await durable(KEPT)).toBe(true);
      expect(await durable(`${KEPT}.dlq`)).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('whose derived name is over 255 bytes fails the boot naming it and its queue, before anything is declared', async () => {
    expect(Buffer.byteLength(LONG)).toBe(252);
    const boot = bootApp({ providers: [LongName] });
    await expect(boot).rejects.toBeInstanceOf(TopologyError);
    await expect(boot).rejects.toThrow(
      /^LongName\.on: the dead-letter queue name "e2e\.declare\.long\.q+…" \(queue "e2e\.declare\.long\.q+…" \+ "\.dlq"\) is 256 bytes, over RabbitMQ's limit of 255: shorten the queue's name to at most 251 bytes, or name a dead-letter queue of its own \(failure\.deadLetterQueue\)$/,
    );
    await expect(management(`/api/queues/%2F/${encodeURIComponent(LONG)}`)).rejects.toThrow();
  });
});

import { Injectable } from '@nestjs/common';
import amqplib from 'amqplib';
import { Consume, TopologyError } from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, unique } from './support/broker.js';

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

import amqplib from 'amqplib';
import { defineEvent, defineRpc, PublishError, Publisher, WarrenConfigurationError } from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, management, unique } from './support/broker.js';
import { logged } from './support/logs.js';

// A producer-only app: no handler declares the exchange its contract names.

const Created = defineEvent<{ id: number }>(unique('e2e.contracts.created'), 'order.created');
const Audited = defineEvent<{ id: number }>(unique('e2e.contracts.audit'), '', { exchangeType: 'fanout' });
const Quote = defineRpc<number, number>(unique('e2e.contracts.quote'), {
  exchange: unique('e2e.contracts.quotes'),
  routingKey: 'quote',
});
const Undeclared = defineEvent<{ id: number }>(unique('e2e.contracts.undeclared'), 'order.created');

afterAll(() => deleteTopology({ exchanges: [Created.exchange, Audited.exchange, Quote.exchange!] }));

/** The exchange's type on the broker (a passive declare cannot tell it; the management API can). */
async function exchangeType(name: string): Promise<string> {
  const connection = await amqplib.connect(brokerUrl());
  try {
    // A passive declare fails (404) when it does not exist.
    await (await connection.createChannel()).checkExchange(name);
  } finally {
    await connection.close();
  }
  return (await management<{ type: string }>(`/api/exchanges/%2F/${encodeURIComponent(name)}`)).type;
}

describe('topology: { contracts }', () => {
  it("declares each contract's exchange with its type, so a producer-only app can publish its own events", async () => {
    const app = await bootApp({}, { topology: { contracts: [Created, Audited, Quote] } });
    try {
      expect(await exchangeType(Created.exchange)).toBe('topic');
      expect(await exchangeType(Audited.exchange)).toBe('fanout');
      expect(await exchangeType(Quote.exchange!)).toBe('direct');

      // A queue of another app, bound to the exchange, gets what this one publishes.
      const connection = await amqplib.connect(brokerUrl());
      const channel = await connection.createChannel();
      const { queue } = await channel.assertQueue('', { exclusive: true });
      await channel.bindQueue(queue, Created.exchange, 'order.*');
      await app.get(Publisher).publish(Created, { id: 1 });
      const message = await channel.get(queue, { noAck: true });
      await connection.close();
      expect(message && JSON.parse(message.content.toString())).toEqual({ id: 1 });
    } finally {
      await app.close();
    }
  });

  it('refuses at boot what is not a contract, and an RPC contract with no exchange, naming the entry', async () => {
    const notAContract = bootApp({}, { topology: { contracts: [{ exchange: 'x' } as never] } });
    await expect(notAContract).rejects.toBeInstanceOf(WarrenConfigurationError);
    await expect(notAContract).rejects.toThrow(
      'WarrenModule options (topology): contracts[0] is not a contract: give what defineEvent() or defineRpc() returns',
    );
    const queueOnly = defineRpc<number, number>('e2e.contracts.queue-only');
    await expect(bootApp({}, { topology: { contracts: [queueOnly] } })).rejects.toThrow(
      'WarrenModule options (topology): contracts[0]: the RPC contract of queue "e2e.contracts.queue-only" has no exchange to declare',
    );
  });

  it('without it, a publish to the undeclared exchange fails with a PublishError that says how to declare it', async () => {
    const app = await bootApp({});
    try {
      const error = await app
        .get(Publisher)
        .publish(Undeclared, { id: 1 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PublishError);
      expect((error as Error).message).toContain(`NOT_FOUND - no exchange '${Undeclared.exchange}' in vhost '/'`);
      expect((error as Error).message).toContain(
        'Declare the exchange: WarrenModule.forRoot({ topology: { contracts: [YourEvent] } }) for a contract',
      );
      // The caller has the error; the log says what happens to the channel, as a warning only.
      expect(logged('error')).toEqual([]);
    } finally {
      await app.close();
    }
  });
});

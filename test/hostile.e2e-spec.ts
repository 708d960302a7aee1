import { Injectable, type INestApplicationContext } from '@nestjs/common';
import amqplib, { type ChannelModel, type GetMessage } from 'amqplib';
import { Consume, FAILURE_HEADERS, RpcClient, RpcHandler, WarrenConnection } from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';
import { deepTable, RawAmqpPublisher, rawProperties } from './support/raw-amqp.js';

// What a hostile or careless sender does to an app: each input is sent from outside Warren (a
// raw AMQP client written from the spec, or plain amqplib) to the real broker.
const INBOX = unique('e2e.hostile.inbox');
const ECHO = unique('e2e.hostile.echo');

@Injectable()
class Handlers {
  received: unknown[] = [];

  @Consume(INBOX)
  onInbox(payload: unknown) {
    this.received.push(payload);
  }

  @RpcHandler(ECHO, { durable: false })
  echo(n: number) {
    return n;
  }
}

describe('hostile input', () => {
  let app: INestApplicationContext;
  let handlers: Handlers;
  let connection: ChannelModel;
  let raw: RawAmqpPublisher;

  beforeAll(async () => {
    app = await bootApp({ providers: [Handlers] });
    handlers = app.get(Handlers);
    connection = await amqplib.connect(brokerUrl());
    raw = await RawAmqpPublisher.connect(brokerUrl());
  });

  afterAll(async () => {
    await raw?.close();
    await app?.close();
    await deleteTopology({ queues: [INBOX, `${INBOX}.dlq`, ECHO] });
    await connection?.close();
  });

  async function nextMessage(queue: string): Promise<GetMessage> {
    const ch = await connection.createChannel();
    let msg: GetMessage | false = false;
    try {
      await waitUntil(`a message on ${queue}`, async () => (msg = await ch.get(queue, { noAck: true })) !== false);
    } finally {
      await ch.close();
    }
    return msg as unknown as GetMessage;
  }

  it('a header table nested 10 000 deep is dead-lettered as poison; the connection and the RPC handler on it go on', async () => {
    const warren = app.get(WarrenConnection);
    const generation = warren.connectionGeneration('consume');
    const headers = deepTable('evil', 10_000);
    expect(headers.length).toBeLessThan(131_072 - 1000);
    const sent = await raw.publish(
      '',
      INBOX,
      Buffer.from('{"id":1}'),
      rawProperties({ contentType: 'application/json', headers, messageId: 'deep-1' }),
    );
    expect(sent).toBe('ok');

    const rpc = app.get(RpcClient);
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => rpc.call(ECHO, i, { timeout: 5000 })));
    expect(replies).toEqual(Array.from({ length: 20 }, (_, i) => i));

    const dead = await nextMessage(`${INBOX}.dlq`);
    expect(dead.properties.messageId).toBe('deep-1');
    expect(dead.properties.headers?.[FAILURE_HEADERS.reason]).toBe('poison');
    expect(String(dead.properties.headers?.[FAILURE_HEADERS.errorMessage])).toMatch(
      /header "evil".*nested deeper than/,
    );
    expect(dead.content.toString()).toBe('{"id":1}');
    expect(handlers.received).toEqual([]);
    expect(warren.connectionGeneration('consume')).toBe(generation);
  });
});

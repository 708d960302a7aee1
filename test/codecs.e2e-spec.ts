import { Injectable, type INestApplicationContext } from '@nestjs/common';
import amqplib, { type ChannelModel } from 'amqplib';
import * as msgpackr from 'msgpackr';
import {
  Consume,
  FAILURE_HEADERS,
  msgpackCodec,
  Publisher,
  PublishError,
  RpcClient,
  RpcHandler,
  type WarrenCodec,
  type WarrenContext,
  WarrenConfigurationError,
  WarrenModule,
} from 'nestjs-warren';
import { Test } from '@nestjs/testing';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, nextMessage, unique, waitUntil } from './support/broker.js';

const MSGPACK = 'application/x-msgpack';
const INBOX = unique('e2e.codecs-inbox');
const OUTBOX = unique('e2e.codecs-outbox');
const RPC = unique('e2e.codecs-rpc');

/** A codec whose encoder refuses what it cannot write, as a real schema-bound one (Protobuf) would. */
const picky: WarrenCodec = {
  contentType: 'application/x-picky',
  encode: () => {
    throw new Error('no field "id"');
  },
  decode: (content) => content.toString('utf8'),
};

@Injectable()
class Handlers {
  received: { payload: unknown; contentType?: string }[] = [];

  @Consume(INBOX)
  onMessage(payload: unknown, ctx: WarrenContext) {
    this.received.push({ payload, contentType: ctx.properties.contentType });
  }

  @RpcHandler(RPC)
  total(request: { items: { price: number }[]; at: Date }) {
    return { total: request.items.reduce((sum, i) => sum + i.price, 0), day: request.at.getUTCDate() };
  }
}

let app: INestApplicationContext;
let raw: ChannelModel;

beforeAll(async () => {
  app = await bootApp(
    { providers: [Handlers] },
    { codecs: [msgpackCodec(msgpackr), picky], topology: { queues: [{ name: OUTBOX }] } },
  );
  raw = await amqplib.connect(brokerUrl());
});

afterAll(async () => {
  await app?.close();
  await raw?.close();
  await deleteTopology({ queues: [INBOX, `${INBOX}.dlq`, OUTBOX, RPC, `${RPC}.dlq`] });
});

async function sendRaw(queue: string, content: Buffer, contentType?: string): Promise<void> {
  const ch = await raw.createConfirmChannel();
  ch.sendToQueue(queue, content, { contentType });
  await ch.waitForConfirms();
  await ch.close();
}

describe('codecs', () => {
  it('publishes MessagePack that a consumer outside Warren (raw amqplib, msgpackr) reads', async () => {
    const order = { id: 'o-1', qty: 3, placedAt: new Date('2026-01-02T03:04:05Z'), tags: ['a', 'b'] };
    await app.get(Publisher).sendToQueue(OUTBOX, order, { contentType: MSGPACK });
    const msg = await nextMessage(raw, OUTBOX);
    expect(msg.properties.contentType).toBe(MSGPACK);
    // Not JSON: the bytes are MessagePack.
    expect(() => JSON.parse(msg.content.toString('utf8'))).toThrow(SyntaxError);
    expect(msgpackr.unpack(msg.content)).toEqual(order);
  });

  it('decodes MessagePack a non-Warren publisher sends, by its content-type (parameters and case ignored)', async () => {
    const body = { id: 'o-2', at: new Date('2026-02-03T00:00:00Z'), nested: { n: [1, 2, 3] } };
    await sendRaw(INBOX, msgpackr.pack(body), 'Application/X-MsgPack; charset=binary');
    const handlers = app.get(Handlers);
    await waitUntil('the MessagePack message', () => handlers.received.length === 1);
    expect(handlers.received[0].payload).toEqual(body);
    // A Date came back a Date: MessagePack's timestamp, not JSON's string.
    expect((handlers.received[0].payload as { at: unknown }).at).toBeInstanceOf(Date);
  });

  it('round-trips through Warren on both ends', async () => {
    const handlers = app.get(Handlers);
    handlers.received.length = 0;
    await app.get(Publisher).sendToQueue(INBOX, { big: 2n ** 62n }, { contentType: MSGPACK });
    await waitUntil('the message', () => handlers.received.length === 1);
    // A value JSON cannot carry, which MessagePack can.
    expect(handlers.received[0]).toEqual({ payload: { big: 2n ** 62n }, contentType: MSGPACK });
  });

  it('dead-letters a message whose content type no codec reads, naming the type, and keeps consuming', async () => {
    const handlers = app.get(Handlers);
    handlers.received.length = 0;
    await sendRaw(INBOX, Buffer.from('<order id="o-3"/>'), 'application/xml');
    const dead = await nextMessage(raw, `${INBOX}.dlq`);
    expect(dead.content.toString()).toBe('<order id="o-3"/>');
    expect(dead.properties.contentType).toBe('application/xml');
    expect(dead.properties.headers).toMatchObject({
      [FAILURE_HEADERS.reason]: 'poison',
      [FAILURE_HEADERS.errorName]: 'UnsupportedContentTypeError',
      [FAILURE_HEADERS.attempts]: 1,
    });
    expect(String(dead.properties.headers?.[FAILURE_HEADERS.errorMessage])).toContain(
      'no codec for content type "application/xml"',
    );
    expect(handlers.received).toEqual([]);
    await app.get(Publisher).sendToQueue(INBOX, { fine: true });
    await waitUntil('the next message', () => handlers.received.length === 1);
  });

  it('reads JSON in the charset its content type names, and dead-letters a charset it cannot read, naming it', async () => {
    const handlers = app.get(Handlers);
    handlers.received.length = 0;
    // A sender writing UTF-16: read as UTF-8 it would not even parse.
    await sendRaw(INBOX, Buffer.from('{"name":"Zoë"}', 'utf16le'), 'application/json; charset=UTF-16LE');
    await waitUntil('the UTF-16 message', () => handlers.received.length === 1);
    expect(handlers.received[0].payload).toEqual({ name: 'Zoë' });
    await sendRaw(INBOX, Buffer.from('{"name":"x"}'), 'application/json; charset=x-klingon');
    const dead = await nextMessage(raw, `${INBOX}.dlq`);
    expect(dead.properties.headers).toMatchObject({
      [FAILURE_HEADERS.reason]: 'poison',
      [FAILURE_HEADERS.errorName]: 'MessageDecodeError',
    });
    expect(String(dead.properties.headers?.[FAILURE_HEADERS.errorMessage])).toBe(
      'Body cannot be decoded: charset "x-klingon" is not supported',
    );
    expect(handlers.received).toHaveLength(1);
  });

  it('dead-letters a body its codec cannot decode as poison', async () => {
    await sendRaw(INBOX, Buffer.from([0x84, 0xa1]), MSGPACK);
    const dead = await nextMessage(raw, `${INBOX}.dlq`);
    expect(dead.properties.headers).toMatchObject({
      [FAILURE_HEADERS.reason]: 'poison',
      [FAILURE_HEADERS.errorName]: 'MessageDecodeError',
    });
    expect(String(dead.properties.headers?.[FAILURE_HEADERS.errorMessage])).toMatch(
      /^Body cannot be decoded as application\/x-msgpack: /,
    );
  });

  it('refuses at publish a content type with no codec, and a codec that throws, naming the type', async () => {
    const publisher = app.get(Publisher);
    await expect(publisher.sendToQueue(OUTBOX, { id: 1 }, { contentType: 'application/cbor' })).rejects.toThrow(
      `Cannot publish to queue "${OUTBOX}": no codec for content type "application/cbor": register one in the module's codecs, or give the payload as a Buffer`,
    );
    await expect(publisher.sendToQueue(OUTBOX, { id: 1 }, { contentType: 'application/x-picky' })).rejects.toThrow(
      `Cannot publish to queue "${OUTBOX}": payload cannot be encoded as application/x-picky: no field "id"`,
    );
    await expect(publisher.sendToQueue(OUTBOX, {}, { contentType: 'application/x-picky' })).rejects.toThrow(
      PublishError,
    );
    // A Buffer is bytes the caller encoded: it goes as it is, whatever the type.
    await publisher.sendToQueue(OUTBOX, Buffer.from([1, 2]), { contentType: 'application/cbor' });
    const msg = await nextMessage(raw, OUTBOX);
    expect([...msg.content]).toEqual([1, 2]);
    expect(msg.properties.contentType).toBe('application/cbor');
  });

  it('sends RPC requests in the codec asked for, and the server replies in the same type', async () => {
    const reply = await app
      .get(RpcClient)
      .call(
        RPC,
        { items: [{ price: 2 }, { price: 5 }], at: new Date('2026-03-09T00:00:00Z') },
        { contentType: MSGPACK },
      );
    // The handler's `request.at.getUTCDate()` worked: the request came as MessagePack, its Date a Date.
    expect(reply).toEqual({ total: 7, day: 9 });
  });

  it('replies in MessagePack to a MessagePack request from a client outside Warren', async () => {
    const ch = await raw.createChannel();
    try {
      const { queue } = await ch.assertQueue('', { exclusive: true });
      ch.sendToQueue(RPC, msgpackr.pack({ items: [{ price: 1 }], at: new Date('2026-03-04T00:00:00Z') }), {
        contentType: MSGPACK,
        replyTo: queue,
        correlationId: 'c-1',
      });
      const msg = await nextMessage(raw, queue);
      expect(msg.properties.contentType).toBe(MSGPACK);
      expect(msg.properties.correlationId).toBe('c-1');
      expect(msgpackr.unpack(msg.content)).toEqual({ total: 1, day: 4 });
    } finally {
      await ch.close();
    }
  });

  it('fails the boot on codecs that cannot be, naming the entry', async () => {
    const boot = (codecs: unknown) =>
      Test.createTestingModule({
        imports: [WarrenModule.forRoot({ url: brokerUrl(), codecs: codecs as WarrenCodec[] })],
      }).compile();
    await expect(boot([msgpackCodec(msgpackr), msgpackCodec(msgpackr)])).rejects.toThrow(
      new WarrenConfigurationError(
        'WarrenModule options: codecs[1]: a codec for "application/x-msgpack" is already registered; keep one',
      ),
    );
    await expect(boot([{ contentType: 'msgpack', encode: () => Buffer.alloc(0), decode: () => null }])).rejects.toThrow(
      /codecs\[0\]: contentType must be a media type such as "application\/x-msgpack" \(no parameters\), got "msgpack"/,
    );
  });
});

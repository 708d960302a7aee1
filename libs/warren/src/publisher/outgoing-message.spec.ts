import type { Options } from 'amqplib';
import { defineEvent, defineRpc } from '../contracts/contracts.js';
import type { StandardSchemaV1 } from '../validation/standard-schema.js';
import { PublishError } from '../warren.errors.js';
import { MessageCodecs } from '../codec/codecs.js';
import { prepareOutgoing, schemaChecked } from './outgoing-message.js';

const LIMIT = { maxBytes: 64, codecs: new MessageCodecs() };

function refusal(prepare: () => unknown): string {
  try {
    prepare();
  } catch (err) {
    expect(err).toBeInstanceOf(PublishError);
    return (err as Error).message;
  }
  throw new Error('the message was not refused');
}

describe('prepareOutgoing', () => {
  it('returns the body and completes the content type, leaving the rest of the properties as they were', () => {
    const properties: Options.Publish = { contentType: undefined, headers: { a: 1 }, persistent: false };
    const content = prepareOutgoing('publish', 'orders', 'order.placed', { id: 7 }, properties, LIMIT);
    expect(content.toString()).toBe('{"id":7}');
    expect(properties).toEqual({ contentType: 'application/json', headers: { a: 1 }, persistent: false });
  });

  it("keeps the caller's content type for raw text and bytes", () => {
    const text: Options.Publish = { contentType: 'text/plain', headers: undefined };
    expect(prepareOutgoing('publish', '', 'q', 'hello', text, LIMIT).toString()).toBe('hello');
    expect(text.contentType).toBe('text/plain');
    const bytes: Options.Publish = { contentType: undefined, headers: undefined };
    prepareOutgoing('publish', '', 'q', Buffer.from('raw'), bytes, LIMIT);
    expect(bytes.contentType).toBeUndefined();
  });

  it.each([
    [
      'a publish to an exchange',
      'publish',
      'orders',
      'k',
      undefined,
      'Cannot publish to exchange "orders": message is 66 bytes, over the limit of 64 (maxMessageBytes)',
    ],
    [
      'a publish to a queue',
      'publish',
      '',
      'tasks',
      undefined,
      'Cannot publish to queue "tasks": message is 66 bytes, over the limit of 64 (maxMessageBytes)',
    ],
    [
      'an RPC request through an exchange',
      'rpc',
      'rpc',
      'fib',
      'rpc_queue',
      'RPC to "rpc_queue": message is 66 bytes, over the limit of 64 (maxMessageBytes)',
    ],
  ] as const)('names the target of %s it refuses', (_name, sender, exchange, routingKey, queue, message) => {
    const properties: Options.Publish = { contentType: undefined, headers: undefined };
    const prepare = () => prepareOutgoing(sender, exchange, routingKey, 'x'.repeat(64), properties, LIMIT, queue);
    expect(refusal(prepare)).toBe(message);
  });

  it('speaks of the routing key on an exchange and of the queue name on the default exchange', () => {
    const long = 'k'.repeat(256);
    const properties: Options.Publish = {};
    expect(refusal(() => prepareOutgoing('publish', 'orders', long, {}, properties, LIMIT))).toBe(
      `Cannot publish to exchange "orders": routing key is 256 bytes, over RabbitMQ's limit of 255`,
    );
    expect(refusal(() => prepareOutgoing('rpc', '', long, {}, properties, LIMIT))).toBe(
      `RPC to "${long}": queue name is 256 bytes, over RabbitMQ's limit of 255`,
    );
  });

  it('refuses payloads with no JSON form and headers AMQP cannot carry, keeping the cause', () => {
    const properties: Options.Publish = { headers: undefined };
    const error = (() => {
      try {
        prepareOutgoing('rpc', '', 'q', 10n, properties, LIMIT);
      } catch (err) {
        return err as PublishError;
      }
    })();
    expect(error?.message).toBe(
      'RPC to "q": Payload cannot be serialised to JSON: Do not know how to serialize a BigInt',
    );
    expect(error?.cause).toBeInstanceOf(PublishError);
    const badHeaders: Options.Publish = { headers: { n: NaN } };
    expect(refusal(() => prepareOutgoing('publish', '', 'q', {}, badHeaders, LIMIT))).toBe(
      'Cannot publish to queue "q": headers.n is NaN, which AMQP cannot encode',
    );
  });
});

describe('schemaChecked', () => {
  const positive: StandardSchemaV1<number> = {
    '~standard': {
      version: 1,
      vendor: 'test',
      validate: (value) =>
        typeof value === 'number' && value > 0
          ? { value: value * 2 }
          : { issues: [{ message: 'must be a positive number', path: ['n'] }] },
    },
  };

  it('resolves with the value the schema returns, which may be transformed', async () => {
    await expect(schemaChecked(defineRpc('rpc_queue'), positive, 21)).resolves.toBe(42);
  });

  it.each([
    [
      'an RPC request',
      defineRpc('rpc_queue'),
      'RPC to "rpc_queue": request fails the contract\'s schema: n: must be a positive number',
    ],
    [
      'an event',
      defineEvent('orders', 'order.placed'),
      'Cannot publish to exchange "orders" with routing key "order.placed": payload fails the contract\'s schema: n: must be a positive number',
    ],
  ])('refuses %s that fails the schema with a PublishError naming its target', async (_name, contract, message) => {
    const error = await schemaChecked(contract, positive, -1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishError);
    expect((error as Error).message).toBe(message);
  });
});

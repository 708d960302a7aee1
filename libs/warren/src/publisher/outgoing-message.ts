import type { Options } from 'amqplib';
import type { Encoded } from '../codec/message-codec.js';
import type { MessageCodecs } from '../codec/codecs.js';
import type { EventContract, RpcContract } from '../contracts/contracts.js';
import { routingKeyProblem } from '../topology/binding-key.js';
import { openTelemetry, withTraceContext } from '../tracing/trace-context.js';
import { type StandardSchemaV1, validateWithSchema } from '../validation/standard-schema.js';
import { PublishError } from '../warren.errors.js';
import { encodeHeaderDates, propertiesProblem } from './amqp-headers.js';

/**
 * Who sends a message, which decides how its errors name where it was going: a publish names its
 * exchange (on the default exchange, its queue), an RPC request the queue of its server.
 */
export type Sender = 'publish' | 'rpc';

/** What every outgoing message of a connection is held to: its size limit and its codecs. */
export interface OutgoingRules {
  /** `maxMessageBytes`. */
  maxBytes: number;
  /** The connection's codecs: the payload is encoded by the one of its `contentType`. */
  codecs: MessageCodecs;
}

/**
 * Checks and encodes one outgoing message before anything is queued, the same way for every
 * sender: its exchange's name and routing key, its payload's encoding, properties and headers AMQP
 * can carry (`amqp-headers.ts`), `maxBytes`. The payload is encoded by the codec of its `contentType`.
 *
 * `properties` are completed in place rather than built here, since each sender has its own
 * (a publish is persistent and confirmed, a request expires with its caller's timeout): the
 * `contentType` comes in as the caller asked and leaves as sent, the `headers` leave with the
 * active trace context. Returns the body. Throws a PublishError naming the target, and then
 * nothing was sent. `queue` is the queue an RPC request is for, when it goes through an exchange.
 */
export function prepareOutgoing(
  sender: Sender,
  exchange: string,
  routingKey: string,
  payload: unknown,
  properties: Options.Publish,
  { maxBytes, codecs }: OutgoingRules,
  queue: string = routingKey,
): Buffer {
  const exchangeBytes = typeof exchange === 'string' ? Buffer.byteLength(exchange) : -1;
  if (exchangeBytes < 0 || exchangeBytes > 255) {
    throw refused(
      sender,
      // An exchange name that long is named by its start.
      `${String(exchange).slice(0, 60)}...`,
      routingKey,
      queue,
      exchangeBytes < 0
        ? 'the exchange name must be a string'
        : `exchange name is ${exchangeBytes} bytes, over AMQP's limit of 255`,
    );
  }
  const badKey = routingKeyProblem(routingKey);
  // On the default exchange the routing key is the queue's name, and is spoken of as such.
  if (badKey) throw refused(sender, exchange, routingKey, queue, exchange ? badKey : asQueueName(badKey));
  let encoded: Encoded;
  try {
    encoded = codecs.encode(payload, properties.contentType);
  } catch (err) {
    throw refused(sender, exchange, routingKey, queue, (err as Error).message, err);
  }
  const badProperties = propertiesProblem(properties);
  if (badProperties) throw refused(sender, exchange, routingKey, queue, badProperties);
  const { content } = encoded;
  if (content.length > maxBytes) {
    throw refused(
      sender,
      exchange,
      routingKey,
      queue,
      `message is ${content.length} bytes, over the limit of ${maxBytes} (maxMessageBytes)`,
    );
  }
  properties.contentType = encoded.contentType;
  properties.headers = encodeHeaderDates(properties.headers);
  if (openTelemetry) properties.headers = withTraceContext(openTelemetry, properties.headers);
  return content;
}

/**
 * The payload as the contract's schema returns it (a schema may transform it), or a PublishError
 * listing its issues. Asynchronous, as schemas may be: only contracts with a schema take this step.
 */
export async function schemaChecked(
  contract: EventContract<unknown> | RpcContract<unknown, unknown>,
  schema: StandardSchemaV1,
  payload: unknown,
): Promise<unknown> {
  const result = await validateWithSchema(schema, payload);
  if (!('issues' in result)) return result.value;
  const issues = result.issues.join('; ');
  throw new PublishError(
    contract.kind === 'rpc'
      ? `RPC to "${contract.queue}": request fails the contract's schema: ${issues}`
      : `Cannot publish to exchange "${contract.exchange}" with routing key "${contract.routingKey}": payload fails the contract's schema: ${issues}`,
  );
}

/**
 * What a publish to an event contract sends, in the terms of a publish by name: the contract's
 * exchange and routing key, and the payload its schema returned (as given without a schema). The
 * one reading of a contract for `Publisher.publish()` and the outbox's `publish()`.
 */
export async function contractTarget(
  contract: EventContract<unknown>,
  payload: unknown,
): Promise<[exchange: string, routingKey: string, payload: unknown]> {
  const checked = contract.schema ? await schemaChecked(contract, contract.schema, payload) : payload;
  return [contract.exchange, contract.routingKey, checked];
}

/** How errors name where a message was going: the default exchange's routing key is a queue. */
export function targetOf(exchange: string, routingKey: string): string {
  return exchange ? `exchange "${exchange}"` : `queue "${routingKey}"`;
}

// Errors are worded only once something fails: the path of a good message builds no strings.
function refused(
  sender: Sender,
  exchange: string,
  routingKey: string,
  queue: string,
  why: string,
  cause?: unknown,
): PublishError {
  const start = sender === 'rpc' ? `RPC to "${queue}"` : `Cannot publish to ${targetOf(exchange, routingKey)}`;
  return new PublishError(`${start}: ${why}`, cause === undefined ? undefined : { cause });
}

function asQueueName(problem: string): string {
  return problem.replace('routing key', 'queue name');
}

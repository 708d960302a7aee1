import type { EventContract, RpcContract } from '../contracts/contracts.js';
import type { ConnectionTopology, HandlerTopology, WarrenTopology } from '../registry/topology-view.js';
import type { ExchangeDeclaration, QueueDeclaration } from '../topology/topology.js';
import type { StandardSchemaV1 } from '../validation/standard-schema.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import { type JsonSchema, jsonSchemaOf } from './json-schema.js';

/** Any contract, whatever its payload types. */
export type AnyContract = EventContract<any> | RpcContract<any, any>;

type Ref = { $ref: string };

export interface AsyncApiInfo {
  title: string;
  version: string;
  description?: string;
  [extension: `x-${string}`]: unknown;
}

/** An AsyncAPI 3.0.0 document, as far as Warren writes one. */
export interface AsyncApiDocument {
  asyncapi: '3.0.0';
  info: AsyncApiInfo;
  defaultContentType: string;
  servers?: Record<string, Record<string, unknown>>;
  channels: Record<string, AsyncApiChannel>;
  operations: Record<string, AsyncApiOperation>;
  components: { messages: Record<string, AsyncApiMessage> };
}

export interface AsyncApiChannel {
  address: string | null;
  title?: string;
  description?: string;
  messages: Record<string, Ref>;
  bindings: { amqp: Record<string, unknown> };
  [extension: `x-${string}`]: unknown;
}

export interface AsyncApiOperation {
  action: 'send' | 'receive';
  channel: Ref;
  summary?: string;
  description?: string;
  messages: Ref[];
  reply?: { channel: Ref; messages: Ref[] };
  bindings?: { amqp: Record<string, unknown> };
  [extension: `x-${string}`]: unknown;
}

export interface AsyncApiMessage {
  name: string;
  title?: string;
  summary?: string;
  contentType: string;
  payload?: JsonSchema;
  [extension: `x-${string}`]: unknown;
}

export interface AsyncApiDocumentOptions {
  info: AsyncApiInfo;
  /**
   * Names for contracts, `{ OrderPlaced, StockCheck }`: their messages take these names (a
   * contract has none of its own, so they are otherwise named after their exchange and routing
   * key, or their queue). Contracts listed here that no handler receives are described too.
   */
  contracts?: Record<string, AnyContract>;
  /**
   * Contracts the app sends (publishes, calls): a `send` operation each. The decorators say what
   * an app receives; what it publishes is in its code, so it is listed here.
   */
  sends?: readonly AnyContract[];
  /** AsyncAPI server objects, e.g. `{ production: { host: 'rabbit:5672', protocol: 'amqp' } }`. */
  servers?: Record<string, Record<string, unknown>>;
}

const AMQP = '0.3.0';
const VHOST = '/';
/** RabbitMQ's direct reply-to: where RPC replies go, one pseudo-queue per caller. */
const REPLY_CHANNEL = 'rpc.replies';
const DECORATOR: Record<HandlerTopology['kind'], string> = {
  subscribe: '@Subscribe()',
  consume: '@Consume()',
  rpc: '@RpcHandler()',
};

/** An AsyncAPI identifier (channels, operations, messages are keyed by `^[\w.-]+$`). */
function id(text: string): string {
  return text.replace(/[^\w.-]/g, '_') || '_';
}

/** A JSON Pointer segment. */
function pointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Builds the AsyncAPI document of a topology. Exchanges and queues become channels with their
 * AMQP bindings, every handler a `receive` operation (RPC handlers with their reply), every
 * contract a message with its payload's JSON Schema when its validator can give one.
 */
export function buildDocument(topology: WarrenTopology, options: AsyncApiDocumentOptions): AsyncApiDocument {
  if (!options || typeof options.info?.title !== 'string' || typeof options.info.version !== 'string') {
    throw new WarrenConfigurationError(
      'WarrenAsyncApi.createDocument(app, { info }): info needs a title and a version',
    );
  }
  const builder = new DocumentBuilder(options);
  for (const connection of topology.connections) builder.connection(connection);
  for (const contract of Object.values(options.contracts ?? {})) builder.describe(contract);
  for (const contract of options.sends ?? []) builder.send(contract);
  return builder.document;
}

class DocumentBuilder {
  readonly document: AsyncApiDocument;
  private readonly names = new Map<AnyContract, string>();
  private readonly operationIds = new Set<string>();
  /** The default connection's channels have no prefix: it is the one contracts are sent on. */
  private prefix = '';

  constructor(options: AsyncApiDocumentOptions) {
    this.document = {
      asyncapi: '3.0.0',
      info: options.info,
      defaultContentType: 'application/json',
      ...(options.servers ? { servers: options.servers } : {}),
      channels: {},
      operations: {},
      components: { messages: {} },
    };
    for (const [name, contract] of Object.entries(options.contracts ?? {})) {
      if (!contract || (contract.kind !== 'event' && contract.kind !== 'rpc')) {
        throw new WarrenConfigurationError(
          `WarrenAsyncApi.createDocument(): contracts.${name} is not a contract (defineEvent() or defineRpc())`,
        );
      }
      this.names.set(contract, id(name));
    }
    for (const [i, contract] of (options.sends ?? []).entries()) {
      if (!contract || (contract.kind !== 'event' && contract.kind !== 'rpc')) {
        throw new WarrenConfigurationError(
          `WarrenAsyncApi.createDocument(): sends[${i}] is not a contract (defineEvent() or defineRpc())`,
        );
      }
    }
  }

  connection(connection: ConnectionTopology): void {
    this.prefix = connection.connection === 'default' ? '' : `${id(connection.connection)}.`;
    const on = this.prefix ? ` (connection "${connection.connection}")` : '';
    for (const exchange of connection.exchanges) {
      this.exchangeChannel(exchange, `Exchange declared by ${exchange.declaredBy.join(', ')}${on}.`);
    }
    for (const queue of connection.queues) {
      const bindings = connection.bindings.filter((b) => b.queue === queue.name);
      this.queueChannel(
        queue,
        this.queueChannelId(queue.name),
        `Queue declared by ${queue.declaredBy.join(', ')}${on}.`,
        bindings,
      );
    }
    for (const handler of connection.handlers) this.handler(handler, on);
    this.prefix = '';
  }

  /** A contract named in the options: its message on its channel, even if nothing here receives it. */
  describe(contract: AnyContract): void {
    if (contract.kind === 'event') this.eventMessage(contract, this.ensureExchange(contract));
    else this.rpcMessages(contract, this.requestChannel(contract));
  }

  send(contract: AnyContract): void {
    if (contract.kind === 'event') {
      const channel = this.ensureExchange(contract);
      const message = this.eventMessage(contract, channel);
      this.operation(`send.${message}`, {
        action: 'send',
        channel: this.channelRef(channel),
        summary: `Publishes ${message} to exchange "${contract.exchange}" with routing key "${contract.routingKey}"`,
        messages: [this.messageRef(channel, message)],
        bindings: { amqp: { cc: [contract.routingKey], deliveryMode: 2, bindingVersion: AMQP } },
      });
      return;
    }
    const channel = this.requestChannel(contract);
    const { request, reply } = this.rpcMessages(contract, channel);
    this.operation(`call.${request}`, {
      action: 'send',
      channel: this.channelRef(channel),
      summary: `Calls ${contract.queue} over RPC and waits for its reply (RpcClient.call)`,
      messages: [this.messageRef(channel, request)],
      reply: { channel: this.channelRef(REPLY_CHANNEL), messages: [this.messageRef(REPLY_CHANNEL, reply)] },
      bindings: {
        amqp: {
          ...(contract.exchange ? { cc: [contract.routingKey] } : {}),
          deliveryMode: 2,
          bindingVersion: AMQP,
        },
      },
    });
  }

  private handler(handler: HandlerTopology, on: string): void {
    const channel =
      handler.queue.name === ''
        ? this.queueChannel(
            handler.queue,
            `${this.prefix}queue.${id(handler.label)}`,
            `Server-named queue of ${handler.label}${on}: exclusive to its connection, renamed by RabbitMQ at every (re)connect.`,
            handler.bindings,
          )
        : this.queueChannelId(handler.queue.name);
    const summary = `${DECORATOR[handler.kind]} on ${handler.label}`;
    const warren = {
      kind: handler.kind,
      handler: handler.label,
      prefetch: handler.prefetch,
      failure: handler.failure,
    };
    const amqp = { ack: true, bindingVersion: AMQP };
    const opId = `${this.prefix}${id(handler.label)}`;
    if (handler.kind === 'rpc') {
      const contract = handler.contract?.kind === 'rpc' ? handler.contract : undefined;
      const { request, reply } = contract
        ? this.rpcMessages(contract, channel)
        : this.handlerRpcMessages(handler, channel);
      this.operation(opId, {
        action: 'receive',
        channel: this.channelRef(channel),
        summary,
        messages: [this.messageRef(channel, request)],
        reply: { channel: this.channelRef(REPLY_CHANNEL), messages: [this.messageRef(REPLY_CHANNEL, reply)] },
        bindings: { amqp },
        'x-warren': warren,
      });
      return;
    }
    const contract = handler.contract?.kind === 'event' ? handler.contract : undefined;
    let message: string;
    if (contract) {
      message = this.eventMessage(contract, channel);
      // The exchange it arrives through carries the message too.
      const exchange = this.exchangeChannelId(contract.exchange);
      if (this.document.channels[exchange]) this.addMessage(exchange, message);
    } else {
      message = this.message(`${this.prefix}${id(handler.label)}.payload`, {
        summary: `What ${handler.label} receives`,
        schema: handler.schema,
      });
      this.addMessage(channel, message);
    }
    this.operation(opId, {
      action: 'receive',
      channel: this.channelRef(channel),
      summary,
      messages: [this.messageRef(channel, message)],
      bindings: { amqp },
      'x-warren': warren,
    });
  }

  private exchangeChannelId(name: string): string {
    return `${this.prefix}exchange.${id(name)}`;
  }

  private queueChannelId(name: string): string {
    return `${this.prefix}queue.${id(name)}`;
  }

  private exchangeChannel(exchange: Required<ExchangeDeclaration>, description: string): string {
    const channel = this.exchangeChannelId(exchange.name);
    this.document.channels[channel] ??= {
      address: exchange.name,
      title: `exchange ${exchange.name}`,
      description,
      messages: {},
      bindings: {
        amqp: {
          is: 'routingKey',
          exchange: {
            name: exchange.name,
            type: exchange.type,
            durable: exchange.durable,
            autoDelete: exchange.autoDelete,
            vhost: VHOST,
            ...(exchange.internal ? { 'x-internal': true } : {}),
            ...(Object.keys(exchange.arguments).length > 0 ? { 'x-arguments': exchange.arguments } : {}),
          },
          bindingVersion: AMQP,
        },
      },
    };
    return channel;
  }

  private queueChannel(
    queue: Required<QueueDeclaration>,
    channel: string,
    description: string,
    bindings: readonly { exchange: string; routingKey: string; arguments: Record<string, unknown> }[],
  ): string {
    this.document.channels[channel] ??= {
      address: queue.name === '' ? null : queue.name,
      title: queue.name === '' ? 'server-named queue' : `queue ${queue.name}`,
      description,
      messages: {},
      bindings: {
        amqp: {
          is: 'queue',
          queue: {
            ...(queue.name === '' ? {} : { name: queue.name }),
            durable: queue.durable,
            exclusive: queue.exclusive,
            autoDelete: queue.autoDelete,
            vhost: VHOST,
            ...(Object.keys(queue.arguments).length > 0 ? { 'x-arguments': queue.arguments } : {}),
          },
          bindingVersion: AMQP,
        },
      },
      ...(bindings.length > 0
        ? {
            'x-bindings': bindings.map((b) => ({
              exchange: b.exchange,
              routingKey: b.routingKey,
              ...(Object.keys(b.arguments).length > 0 ? { arguments: b.arguments } : {}),
            })),
          }
        : {}),
    };
    return channel;
  }

  /** The exchange channel of an event contract, described from the contract when the app declares no such exchange. */
  private ensureExchange(contract: EventContract<unknown>): string {
    const channel = this.exchangeChannelId(contract.exchange);
    if (this.document.channels[channel]) return channel;
    return this.exchangeChannel(
      {
        name: contract.exchange,
        type: contract.exchangeType ?? 'topic',
        durable: true,
        autoDelete: false,
        internal: false,
        arguments: {},
      },
      'Exchange named by a contract; this app does not declare it.',
    );
  }

  /** Where an RPC contract's requests go: its exchange, or its queue through the default exchange. */
  private requestChannel(contract: RpcContract<unknown, unknown>): string {
    if (contract.exchange) {
      const channel = this.exchangeChannelId(contract.exchange);
      if (this.document.channels[channel]) return channel;
      return this.exchangeChannel(
        {
          name: contract.exchange,
          type: contract.exchangeType ?? 'direct',
          durable: true,
          autoDelete: false,
          internal: false,
          arguments: {},
        },
        'Exchange named by an RPC contract; this app does not declare it.',
      );
    }
    const channel = this.queueChannelId(contract.queue);
    if (this.document.channels[channel]) return channel;
    return this.queueChannel(
      { name: contract.queue, durable: true, exclusive: false, autoDelete: false, arguments: {} },
      channel,
      'RPC queue named by a contract; another app declares and serves it.',
      [],
    );
  }

  private eventMessage(contract: EventContract<unknown>, channel: string): string {
    const name = this.names.get(contract) ?? id(`${contract.exchange}.${contract.routingKey}`);
    const message = this.message(name, {
      summary: `Event on exchange "${contract.exchange}" with routing key "${contract.routingKey}"`,
      schema: contract.schema,
      extra: { 'x-exchange': contract.exchange, 'x-routing-key': contract.routingKey },
    });
    this.addMessage(channel, message);
    return message;
  }

  private rpcMessages(contract: RpcContract<unknown, unknown>, channel: string): { request: string; reply: string } {
    const name = this.names.get(contract) ?? id(contract.queue);
    const request = this.message(`${name}.request`, {
      summary: `Request to the RPC queue "${contract.queue}"`,
      schema: contract.schema,
      extra: { 'x-queue': contract.queue },
    });
    const reply = this.message(`${name}.reply`, {
      summary: `Reply from "${contract.queue}", sent to the request's reply_to with its correlation_id`,
    });
    this.addMessage(channel, request);
    this.replyChannel();
    this.addMessage(REPLY_CHANNEL, reply);
    return { request, reply };
  }

  private handlerRpcMessages(handler: HandlerTopology, channel: string): { request: string; reply: string } {
    const name = `${this.prefix}${id(handler.label)}`;
    const request = this.message(`${name}.request`, {
      summary: `What ${handler.label} is asked`,
      schema: handler.schema,
    });
    const reply = this.message(`${name}.reply`, { summary: `What ${handler.label} answers` });
    this.addMessage(channel, request);
    this.replyChannel();
    this.addMessage(REPLY_CHANNEL, reply);
    return { request, reply };
  }

  private replyChannel(): void {
    this.document.channels[REPLY_CHANNEL] ??= {
      address: null,
      title: 'RPC replies',
      description:
        "RabbitMQ's direct reply-to (amq.rabbitmq.reply-to): each caller's own pseudo-queue, named by the request's reply_to property.",
      messages: {},
      bindings: { amqp: { is: 'queue', queue: { name: 'amq.rabbitmq.reply-to', vhost: VHOST }, bindingVersion: AMQP } },
    };
  }

  private message(
    name: string,
    about: { summary: string; schema?: StandardSchemaV1; extra?: Record<`x-${string}`, unknown> },
  ): string {
    const messages = this.document.components.messages;
    if (!messages[name]) {
      const payload = jsonSchemaOf(about.schema);
      messages[name] = {
        name,
        summary: about.summary,
        contentType: 'application/json',
        ...(payload ? { payload } : {}),
        ...(about.schema && !payload
          ? { 'x-payload-schema': `a ${about.schema['~standard'].vendor} schema that gives no JSON Schema` }
          : {}),
        ...about.extra,
      };
    }
    return name;
  }

  private addMessage(channel: string, message: string): void {
    this.document.channels[channel].messages[message] ??= { $ref: `#/components/messages/${pointer(message)}` };
  }

  private operation(operationId: string, operation: AsyncApiOperation): void {
    let unique = operationId;
    for (let n = 2; this.operationIds.has(unique); n++) unique = `${operationId}.${n}`;
    this.operationIds.add(unique);
    this.document.operations[unique] = operation;
  }

  private channelRef(channel: string): Ref {
    return { $ref: `#/channels/${pointer(channel)}` };
  }

  private messageRef(channel: string, message: string): Ref {
    return { $ref: `#/channels/${pointer(channel)}/messages/${pointer(message)}` };
  }
}

import { Logger } from '@nestjs/common';
import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import { isBrokerRefusal } from '../connection/amqp-compat.js';
import type { WarrenConnection } from '../connection/warren-connection.js';
import type { FailureOptions, FailurePolicy } from '../topology/failure-policy.js';
import type {
  BindingDeclaration,
  ConsumerTopology,
  ExchangeBindingDeclaration,
  ExchangeDeclaration,
  QueueDeclaration,
} from '../topology/topology.js';
import { type ConsumerSpec, TopologyBuilder } from '../topology/topology-builder.js';
import { declareShared } from '../topology/topology-declarer.js';
import { isEventContract, isRpcContract } from '../contracts/contracts.js';
import type { ServiceTopology } from '../topology/service-queue.js';
import type { QueueType } from '../topology/amqp-rules.js';
import { withDefaultType } from '../topology/consumer-queue.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import { warrenLoggerContext, type WarrenModuleOptions } from '../warren.options.js';

interface SharedTopology {
  exchanges: Required<ExchangeDeclaration>[];
  queues: Required<QueueDeclaration>[];
  bindings: Required<BindingDeclaration>[];
  exchangeBindings: Required<ExchangeBindingDeclaration>[];
}

/**
 * The topology of one connection: every consumer's declarations and the module options' ones,
 * checked against each other as they come, so a contradiction fails before anything reaches the
 * broker. The module options' declarations belong to no consumer: they are declared here, on a
 * channel of their own.
 */
export class TopologyRegistry {
  private readonly logger: Logger;
  private readonly builder = new TopologyBuilder();
  private readonly prefetch: number;
  private readonly concurrency?: number;
  private readonly failure?: FailureOptions;
  private readonly queueType?: QueueType;
  /** Checked when the registry is built (so at the app's start), kept normalised for `declare()`. */
  private readonly moduleTopology: SharedTopology;
  private channel?: ChannelWrapper;

  constructor(
    private readonly connection: WarrenConnection,
    options: WarrenModuleOptions,
  ) {
    this.logger = new Logger(warrenLoggerContext(options));
    this.prefetch = options.prefetch ?? WARREN_DEFAULTS.prefetch;
    this.concurrency = options.concurrency;
    this.failure = options.failure;
    this.queueType = defaultQueueType(options.queues?.type);
    this.moduleTopology = moduleTopology(this.builder, options, this.queueType);
  }

  /** Adds a consumer's declarations; throws TopologyError, naming `label`, when they contradict the rest. */
  consumer(spec: ConsumerSpec, label: string): ConsumerTopology & { failure: FailurePolicy } {
    return this.builder.consumer(spec, label, this.prefetch, this.failure, this.queueType, this.concurrency);
  }

  /** Adds a service queue's declarations: several handlers' specs naming one queue; see TopologyBuilder.serviceConsumer. */
  service(members: readonly { spec: ConsumerSpec; by: string }[]): ServiceTopology {
    return this.builder.serviceConsumer(members, this.prefetch, this.failure, this.queueType, this.concurrency);
  }

  /** Frees a named queue for another consumer, once its consumer is cancelled. */
  release(queueName: string): void {
    this.builder.release(queueName);
  }

  /** The exchanges and queues declared so far that outlive a single consumer. */
  shared(): SharedTopology {
    return this.builder.shared();
  }

  /** Every exchange, named queue and binding declared so far, with who declared each. */
  declarations(): ReturnType<TopologyBuilder['declarations']> {
    return this.builder.declarations();
  }

  /** Declares the module options' declarations; a reconnect declares them again. */
  async declare(): Promise<void> {
    const setup = (channel: Channel) => declareShared(channel, this.moduleTopology);
    this.channel = this.connection.createChannel('consume', { name: 'topology', confirm: false });
    await this.channel.waitForConnect();
    await this.channel.addSetup(setup).catch((err: unknown) => {
      // A connection lost mid-boot is no boot error: the setup stays registered and runs on the reconnect.
      if (isBrokerRefusal(err)) throw err;
      this.logger.warn('connection lost while declaring the module topology; declared after the reconnect');
    });
  }

  async close(): Promise<void> {
    if (this.channel) await this.connection.closeChannel(this.channel);
  }
}

/**
 * The module options' own declarations, checked by `builder`. `checkModuleTopology()` runs it on
 * a builder of its own before the connection opens: a module that fails to build closes nothing.
 */
function moduleTopology(
  builder: TopologyBuilder,
  options: WarrenModuleOptions,
  queueType: QueueType | undefined,
): SharedTopology {
  const by = 'WarrenModule options (topology)';
  const topology = options.topology ?? {};
  const fromContracts = contractExchanges(options);
  return {
    exchanges: [...(topology.exchanges ?? []), ...fromContracts].map((e) => builder.exchange(e, by)),
    queues: (topology.queues ?? []).map((q) => builder.queue(withDefaultType(q, queueType), by)),
    bindings: (topology.bindings ?? []).map((b) => builder.binding(b, by)),
    exchangeBindings: exchangeBindingsOf(topology, by).map((b) => builder.exchangeBinding(b, by)),
  };
}

/** Throws what the module options' topology would throw at boot (TopologyError, WarrenConfigurationError). */
export function checkModuleTopology(options: WarrenModuleOptions): void {
  moduleTopology(new TopologyBuilder(), options, defaultQueueType(options.queues?.type));
}

function exchangeBindingsOf(
  topology: WarrenModuleOptions['topology'] & object,
  by: string,
): ExchangeBindingDeclaration[] {
  const list: unknown = topology.exchangeBindings ?? [];
  if (!Array.isArray(list)) {
    throw new WarrenConfigurationError(
      `${by}: exchangeBindings must be an array of { source, destination, routingKey }`,
    );
  }
  list.forEach((b: unknown, i) => {
    if (b === null || typeof b !== 'object') {
      throw new WarrenConfigurationError(`${by}: exchangeBindings[${i}] must be { source, destination, routingKey }`);
    }
  });
  return list as ExchangeBindingDeclaration[];
}

/**
 * The exchanges of the module options' `topology.contracts`; throws WarrenConfigurationError
 * naming an entry that is not a contract, or that has no exchange.
 */
export function contractExchanges(options: WarrenModuleOptions): ExchangeDeclaration[] {
  const by = 'WarrenModule options (topology)';
  return (options.topology?.contracts ?? []).map((c, i) => contractExchange(c, `${by}: contracts[${i}]`));
}

/**
 * The exchange a contract in the module's topology stands for, with the type a handler of it
 * would declare: `@Subscribe(event)` defaults to topic, `@RpcHandler(rpc)` to direct.
 */
function contractExchange(contract: unknown, who: string): ExchangeDeclaration {
  if (isEventContract(contract)) return { name: contract.exchange, type: contract.exchangeType ?? 'topic' };
  if (isRpcContract(contract)) {
    if (!contract.exchange) {
      throw new WarrenConfigurationError(
        `${who}: the RPC contract of queue "${contract.queue}" has no exchange to declare (its queue is declared by its server's @RpcHandler)`,
      );
    }
    return { name: contract.exchange, type: contract.exchangeType ?? 'direct' };
  }
  throw new WarrenConfigurationError(`${who} is not a contract: give what defineEvent() or defineRpc() returns`);
}

/** The module-wide default type of named durable queues: classic or quorum (a stream is consumed differently). */
function defaultQueueType(type: unknown = WARREN_DEFAULTS.queues.type): QueueType | undefined {
  // Classic is what a queue of no type is: nothing to add to its arguments.
  if (type === 'classic') return undefined;
  if (type === 'quorum') return type;
  throw new WarrenConfigurationError(
    `WarrenModule options: queues.type must be "classic" or "quorum", got ${JSON.stringify(type)}` +
      (type === 'stream' ? '; declare a stream on its handler with queueType: "stream"' : ''),
  );
}

import { Logger } from '@nestjs/common';
import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import { isBrokerRefusal } from '../connection/amqp-compat.js';
import type { WarrenConnection } from '../connection/warren-connection.js';
import type { FailureOptions, FailurePolicy } from '../topology/failure-policy.js';
import type {
  BindingDeclaration,
  ConsumerTopology,
  ExchangeDeclaration,
  QueueDeclaration,
} from '../topology/topology.js';
import { type ConsumerSpec, TopologyBuilder } from '../topology/topology-builder.js';
import { declareShared } from '../topology/topology-declarer.js';
import type { QueueType } from '../topology/amqp-rules.js';
import { withDefaultType } from '../topology/consumer-queue.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';
import { warrenLoggerContext, type WarrenModuleOptions } from '../warren.options.js';

interface SharedTopology {
  exchanges: Required<ExchangeDeclaration>[];
  queues: Required<QueueDeclaration>[];
  bindings: Required<BindingDeclaration>[];
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
    this.failure = options.failure;
    this.queueType = defaultQueueType(options.queues?.type);
    const by = 'WarrenModule options (topology)';
    const topology = options.topology ?? {};
    this.moduleTopology = {
      exchanges: (topology.exchanges ?? []).map((e) => this.builder.exchange(e, by)),
      queues: (topology.queues ?? []).map((q) => this.builder.queue(withDefaultType(q, this.queueType), by)),
      bindings: (topology.bindings ?? []).map((b) => this.builder.binding(b, by)),
    };
  }

  /** Adds a consumer's declarations; throws TopologyError, naming `label`, when they contradict the rest. */
  consumer(spec: ConsumerSpec, label: string): ConsumerTopology & { failure: FailurePolicy } {
    return this.builder.consumer(spec, label, this.prefetch, this.failure, this.queueType);
  }

  /** Frees a named queue for another consumer, once its consumer is cancelled. */
  release(queueName: string): void {
    this.builder.release(queueName);
  }

  /** The exchanges and queues declared so far that outlive a single consumer. */
  shared(): SharedTopology {
    return this.builder.shared();
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

import type { ModuleMetadata, Type } from '@nestjs/common';
import type {
  ExchangeDeclaration,
  QueueDeclaration,
  BindingDeclaration,
  ExchangeBindingDeclaration,
} from './topology/topology.js';
import type { FailureOptions } from './topology/failure-policy.js';
import type { EventContract, RpcContract } from './contracts/contracts.js';
import type { WarrenCodec } from './codec/codecs.js';
import { WARREN_DEFAULTS } from './warren.defaults.js';

/** Injection token of the resolved module options. */
export const WARREN_MODULE_OPTIONS = Symbol('WARREN_MODULE_OPTIONS');

/**
 * The name of the connection `WarrenModule.forRoot()` registers without a `name`, and that
 * handlers and injections without a connection name use.
 */
export const DEFAULT_CONNECTION: string = WARREN_DEFAULTS.connection;

/** The connection name `options` registers: `DEFAULT_CONNECTION` when it has none. */
export function connectionNameOf(options: { name?: string }): string {
  return options.name ?? DEFAULT_CONNECTION;
}

/**
 * The logger context of everything that works for the connection `options` registers: `Warren`
 * for the default connection, `Warren:<name>` for a named one, so its logs say whose they are.
 */
export function warrenLoggerContext(options: { name?: string }): string {
  const name = connectionNameOf(options);
  return name === DEFAULT_CONNECTION ? 'Warren' : `Warren:${name}`;
}

/**
 * Where stream consumers keep the offset of the last message they finished with, so that a
 * restarted consumer reads on from there instead of from its `offset` option. Keyed by the
 * consumer's label (`Class.method`, or a runtime subscription's label) and the stream's name.
 * Back it with something that survives a restart (a database table, Redis); Warren's default keeps
 * offsets in memory, for the life of the app only.
 */
export interface StreamOffsetStore {
  /** The stored offset, or undefined when the consumer has none yet. */
  load(consumer: string, stream: string): Promise<number | undefined> | number | undefined;
  /** Called as deliveries settle, with offsets that only grow; a failure is logged and retried with the next. */
  save(consumer: string, stream: string, offset: number): Promise<void> | void;
}

/**
 * TLS for `amqps://` URLs, given to every socket of the connection (`tls.connect()`'s options of
 * the same names). Certificates and keys are PEM text or Buffers of it, never file paths: read the
 * files yourself (`readFileSync`). None of them, nor the passphrase, appears in a log line, an
 * error or a health report.
 */
export interface WarrenTlsOptions {
  /** The CA (or CAs) that signed the broker's certificate. Default: Node's trusted CAs. */
  ca?: string | Buffer | (string | Buffer)[];
  /** The client certificate, for a broker that asks for one (mutual TLS, EXTERNAL auth); with `key`. */
  cert?: string | Buffer;
  /** The client certificate's private key; with `cert`. */
  key?: string | Buffer;
  /** Opens an encrypted `key`. */
  passphrase?: string;
  /** The host name the broker's certificate must hold (and SNI's). Default: the URL's host, when a name. */
  servername?: string;
  /** Default true: a broker whose certificate `ca` does not vouch for is refused. False only for a test. */
  rejectUnauthorized?: boolean;
}

export interface WarrenTopologyOptions {
  /** Exchanges to declare even if no handler subscribes to them (e.g. an app that only publishes). */
  exchanges?: ExchangeDeclaration[];
  /** Named queues to declare even if this app does not consume them (e.g. a producer of a work queue). */
  queues?: QueueDeclaration[];
  bindings?: BindingDeclaration[];
  /**
   * Exchange-to-exchange bindings: what `source` routes with `routingKey` goes on to `destination`
   * (e.g. every `order.*` of `orders` into an `audit` fanout). Both exchanges must be declared in
   * `exchanges` (or `contracts`), or be RabbitMQ's built-in `amq.*` ones.
   */
  exchangeBindings?: ExchangeBindingDeclaration[];
  /**
   * Contracts whose exchange this app declares (e.g. a producer-only app publishing its own
   * events): an event contract's exchange (type `exchangeType`, `topic` by default), an RPC
   * contract's exchange (`direct` by default). An RPC contract's queue is its server's to declare.
   */
  contracts?: (EventContract<any> | RpcContract<any, any>)[];
}

/**
 * A handler's names and options from configuration: the entry `handlers[key]` of the module
 * options completes `@Subscribe({ config: key })`, `@Consume({ config: key })` or
 * `@RpcHandler({ config: key })` at boot, over what the decorator itself gives. Each kind takes the
 * fields of its decorator: `exchange`, `bindingKeys` and SubscribeOptions for `@Subscribe`; `queue`
 * and ConsumeOptions for `@Consume`; `queue`, `exchange`, `routingKey`, `exchangeType` and
 * RpcHandlerOptions for `@RpcHandler`. They are checked at boot as the decorator's would be.
 */
export interface WarrenHandlerConfig {
  /** `@Subscribe`: the exchange; `@RpcHandler`: an exchange to bind the request queue to. */
  exchange?: string;
  /** `@Subscribe`: one binding key or several. */
  bindingKeys?: string | string[];
  /** `@Consume` and `@RpcHandler`: the queue; `@Subscribe`: a named queue instead of a temporary one. */
  queue?: string;
  /** `@RpcHandler` with an exchange: the binding key (default: the queue's name). */
  routingKey?: string;
  /** Any other option of the handler's decorator (`prefetch`, `durable`, `failure`, ...). */
  [option: string]: unknown;
}

export interface WarrenModuleOptions {
  /**
   * Registers a named connection, with its own connections, topology, consumers, `Publisher`,
   * `RpcClient`, `ConsumerRegistry` and health indicator, next to the default one. Handlers choose
   * it with the same word, `{ connection: name }`; inject its parts with `@InjectPublisher(name)`
   * and the like. Default: the default connection (`'default'`).
   */
  connection?: string;
  /** @deprecated The older name of `connection`; kept as an alias. */
  name?: string;
  /** Broker URL, e.g. `amqp://user:pass@127.0.0.1:5672/vhost`. */
  url?: string;
  /** Several broker URLs; Warren connects to the first that answers and fails over in order. */
  urls?: string[];
  /**
   * TLS for `amqps://` URLs: the CA that signed the broker's certificate, and the client's own
   * certificate for mutual TLS (see WarrenTlsOptions). With a plain `amqp://` URL it fails the boot.
   */
  tls?: WarrenTlsOptions;
  /**
   * How the connection logs in. Default `plain`: the user and password of the URL (SASL PLAIN).
   * `external`: as the identity of the client certificate `tls.cert` (SASL EXTERNAL; RabbitMQ's
   * `rabbitmq_auth_mechanism_ssl` plugin, the user named by the certificate's common name or
   * distinguished name, as the broker's `ssl_cert_login_from` says); the URL's credentials are then
   * not sent.
   */
  auth?: 'plain' | 'external';
  /** Default consumer prefetch (unacked deliveries per consumer). Default 20. */
  prefetch?: number;
  /**
   * Default handler invocations at once per consumer on this instance, while `prefetch` keeps
   * more deliveries buffered. Default: as many as the consumer's prefetch (1: a queue in order).
   */
  concurrency?: number;
  /** AMQP heartbeat in seconds. Default 10. */
  heartbeatSeconds?: number;
  /** Wait between reconnect attempts, in milliseconds. Default 1000. */
  reconnectDelayMs?: number;
  /**
   * When the broker cancels a consumer (its queue deleted, the node holding it gone), Warren
   * declares the queue and its bindings again and consumes again: these are the waits before each
   * attempt, in milliseconds, the last repeating until one succeeds. Default 100, 1000, 5000.
   */
  resubscribeDelaysMs?: readonly number[];
  /** How long boot waits for the broker before failing. Default 30000. */
  connectTimeoutMs?: number;
  /**
   * Default true: boot waits for the broker (up to `connectTimeoutMs`) and fails without it.
   * False: the app boots without it; readiness stays down, consumers start once the broker
   * answers, publishes wait in memory (within `maxBufferedPublishes`) and RPC calls fail at once.
   */
  waitForBroker?: boolean;
  /**
   * The client-provided name of the AMQP connections, as the broker's management UI shows it
   * (`<name>:consume`, `<name>:publish`). Default `warren` (`warren-<connection>` for a named connection).
   */
  clientProvidedName?: string;
  /** @deprecated The older name of `clientProvidedName`; kept as an alias. */
  connectionName?: string;
  /**
   * Handlers' names and options from configuration, by the key their decorator names:
   * `@Consume({ config: 'jobs' })` takes `handlers.jobs` (see WarrenHandlerConfig). Resolved at boot;
   * a key no handler names is logged as a warning, a handler naming a missing key fails the boot.
   */
  handlers?: Record<string, WarrenHandlerConfig>;
  /**
   * Defaults for the queues Warren declares. `type: 'quorum'` makes every named, durable,
   * non-exclusive queue of no type of its own (`queueType`, `x-queue-type`) a quorum queue: the
   * handlers' queues, their dead-letter queues, `topology.queues`. Temporary queues and the shared
   * retry queues stay classic. Default: RabbitMQ's classic queue.
   */
  queues?: { type?: 'classic' | 'quorum' };
  /** Streams: where consumers keep their offsets. Default: in memory (lost when the app stops). */
  streams?: { offsetStore?: StreamOffsetStore };
  /** Declarations that are not tied to a handler. */
  topology?: WarrenTopologyOptions;
  /**
   * Encoders and decoders by content type, next to the built-in JSON, text and bytes: a publish
   * (or RPC call) with `contentType` is encoded by that type's codec, a delivery decoded by the
   * codec of its `content-type`. A delivery of a type no codec reads is poison. E.g.
   * `[msgpackCodec(msgpackr)]`. A codec for a built-in type replaces the built-in one.
   */
  codecs?: WarrenCodec[];
  /** Largest message body Warren publishes, in bytes. Default 16 MiB. */
  maxMessageBytes?: number;
  /** What happens when a handler throws, unless the handler says otherwise (see FailureOptions). */
  failure?: FailureOptions;
  /** How long shutdown waits for handlers in flight before returning their messages to the queue. Default 10 000 ms. */
  shutdownTimeoutMs?: number;
  /** Publishes held in memory while the broker is unreachable; beyond this, publish() fails. Default 10 000. */
  maxBufferedPublishes?: number;
  /**
   * The queues behind `publish(..., { delay })` (see the guide's "Delayed delivery"): level k holds
   * a message for 2^k seconds, so `levels` bounds the longest delay (2^levels - 1 s; default 28,
   * at most 28). `unitMs` is how long one of those seconds lasts on the broker: 1000, except in a
   * test that runs hours of delay in seconds through the very same code (its ladder has names of
   * its own).
   */
  delayLadder?: { unitMs?: number; levels?: number };
  rpc?: {
    /**
     * Where replies come back: RabbitMQ's direct reply-to (default; no queue to declare, fastest) or
     * an exclusive server-named queue (for brokers or proxies that do not support direct reply-to).
     */
    replyQueue?: 'direct-reply-to' | 'exclusive';
    /** Default timeout of `RpcClient.call`, in milliseconds. Default 10 000. */
    timeoutMs?: number;
  };
}

export interface WarrenOptionsFactory {
  createWarrenOptions(): Promise<WarrenModuleOptions> | WarrenModuleOptions;
}

export interface WarrenModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** The connection's name (see `WarrenModuleOptions.connection`): known before the factory runs, since the tokens depend on it. */
  connection?: string;
  /** @deprecated The older name of `connection`; kept as an alias. */
  name?: string;
  useFactory?: (...args: any[]) => Promise<WarrenModuleOptions> | WarrenModuleOptions;
  inject?: any[];
  useClass?: Type<WarrenOptionsFactory>;
  useExisting?: Type<WarrenOptionsFactory>;
}

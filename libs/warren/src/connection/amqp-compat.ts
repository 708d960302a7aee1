import type { AmqpConnectionManager, ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConfirmChannel, Options } from 'amqplib';
import type { ExternalContextCreator } from '@nestjs/core';
import type { ExternalExceptionsHandler } from '@nestjs/core/exceptions/external-exceptions-handler.js';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import type { Duplex, Writable } from 'node:stream';
import { type DecodedProperties, decodePropertiesSafely } from '../codec/amqp-properties-decoder.js';

/**
 * Everything Warren relies on in amqplib and amqp-connection-manager (and one private field of
 * @nestjs/core) that they do not promise: private fields, a patched socket method, a wrapped frame
 * reader, and error texts told apart by their words. Read from
 * amqplib 2.3.1, amqp-connection-manager 5.0.0 and @nestjs/core 12.5.1; `amqp-compat.spec.ts` pins every entry
 * against the installed versions, so an upgrade that changes one fails a test instead of
 * silently changing what Warren does. Nothing else in Warren may touch these internals.
 */

/**
 * amqplib fails every unconfirmed publish of a confirm channel with this error when the channel
 * closes, whatever closed it (lib/channel.js, `ConfirmChannel` close handling). It carries no
 * code, so the text is all there is to tell it from a publish that failed for its own reason.
 */
export const PUBLISH_CHANNEL_CLOSED = 'channel closed';

/** amqplib's error for a publish the broker answered with basic.nack (lib/channel.js). */
export const PUBLISH_NACKED = 'message nacked';

/**
 * amqp-connection-manager's error for every publish still waiting (unsent, or sent and not
 * confirmed) when its ChannelWrapper is closed (ChannelWrapper.js, `close`): the app is shutting
 * down. Distinct from amqplib's lower-case "channel closed".
 */
export const PUBLISH_WRAPPER_CLOSED = 'Channel closed';

export function isWrapperClosedOnPublish(err: unknown): boolean {
  return err instanceof Error && err.message === PUBLISH_WRAPPER_CLOSED;
}

export function isChannelClosedOnPublish(err: unknown): boolean {
  return err instanceof Error && err.message === PUBLISH_CHANNEL_CLOSED;
}

export function isPublishNacked(err: unknown): boolean {
  return err instanceof Error && err.message === PUBLISH_NACKED;
}

/**
 * True when the broker refused an operation: amqplib puts the AMQP reply code of the server's
 * channel.close or connection.close on the error's `code` (404 NOT_FOUND, 406
 * PRECONDITION_FAILED, 403 ACCESS_REFUSED...). False when the channel or connection merely went
 * away underneath it ("Channel ended", "Channel closed"): the first is the app's mistake and must
 * be reported; the second heals itself, since every channel setup re-runs after the reconnect.
 */
export function isBrokerRefusal(err: unknown): boolean {
  return typeof (err as { code?: unknown } | null)?.code === 'number';
}

/**
 * True when the broker closed the connection because it failed on something sent on it (AMQP 541
 * INTERNAL_ERROR, on the error's `code` as for `isBrokerRefusal`): a crash of one of its channel
 * processes, which RabbitMQ turns into the loss of the whole connection.
 */
export function isBrokerInternalError(err: unknown): boolean {
  return (err as { code?: unknown } | null | undefined)?.code === 541;
}

/**
 * The exchange a broker refusal names, from RabbitMQ's reply text ("NOT_FOUND - no exchange 'x'
 * in vhost '/'", "ACCESS_REFUSED - access to exchange 'x' in vhost '/' refused for user 'u'"):
 * the only place the broker says which publish of a channel it refused. Undefined when the text
 * names no exchange.
 */
export function exchangeNamedBy(refusal: Error): string | undefined {
  return /exchange '(.*?)' in vhost/.exec(refusal.message)?.[1];
}

/**
 * The queue a broker refusal names, from RabbitMQ's reply text ("PRECONDITION_FAILED -
 * inequivalent arg 'durable' for queue 'q.dlq' in vhost '/': ...", "RESOURCE_LOCKED - cannot
 * obtain exclusive access to locked queue 'q' in vhost '/'"): a consumer declares several queues
 * (its own, its dead-letter queue, the retry queues), and only the text says which was refused.
 */
export function queueNamedBy(refusal: Error): string | undefined {
  return /queue '(.*?)' in vhost/.exec(refusal.message)?.[1];
}

/**
 * The largest message the broker takes, from its refusal of a larger one ("PRECONDITION_FAILED -
 * message size 2000000 is larger than configured max size 1048576", RabbitMQ's max_message_size):
 * which publish of the channel it refused is then known by its size. Undefined for other refusals.
 */
export function maxMessageSizeNamedBy(refusal: Error): number | undefined {
  const match = /larger than configured max size (\d+)/.exec(refusal.message);
  return match ? Number(match[1]) : undefined;
}

/**
 * Connection failures no retry can mend: RabbitMQ's ACCESS_REFUSED (bad credentials) and
 * NOT_ALLOWED (vhost access) in the text of amqplib's handshake error.
 */
const REFUSED_LOGIN = /ACCESS.REFUSED|NOT.ALLOWED|vhost .* not found/i;

/**
 * amqplib's whole account of a vhost that does not exist, or that this user may not open: the
 * handshake expected connection.open-ok and got connection.close (lib/connection.js, `Expected
 * %s; got %s`), with no reply code on the error.
 */
const REFUSED_VHOST = /Expected ConnectionOpenOk; got <ConnectionClose/;

/** Why connecting can never succeed with these settings, or undefined when a retry may succeed. */
export function unrecoverableConnectError(err: Error): Error | undefined {
  if (REFUSED_LOGIN.test(err.message)) return err;
  if (REFUSED_VHOST.test(err.message)) {
    return new Error(
      'the broker refused to open the virtual host (it does not exist, or this user has no access to it)',
    );
  }
  return undefined;
}

/**
 * The socket under an amqplib connection (`ChannelModel.connection.stream`, no public accessor),
 * for write coalescing and for knowing when a dead link has really gone.
 */
export function socketOf(connection: unknown): Duplex | undefined {
  return (connection as { connection?: { stream?: Duplex } } | undefined)?.connection?.stream;
}

const COALESCING = Symbol('warren.writeCoalescing');

/**
 * Makes all the frames amqplib writes to a socket in one tick leave in one system call. amqplib
 * writes each frame (a publish is three: method, header, body; then every ack) with its own
 * `stream.write`, and with Nagle off each becomes its own `write(2)`: under load that syscall is
 * the largest single cost of the whole process. Wrapping the socket's `write` to cork on the first
 * write of a tick and uncork at the end of it batches them without holding anything back past the
 * current tick. amqplib offers no hook for it.
 */
export function coalesceWrites(stream: Writable | undefined): void {
  if (!stream || typeof stream.cork !== 'function' || (stream as unknown as Record<symbol, boolean>)[COALESCING])
    return;
  (stream as unknown as Record<symbol, boolean>)[COALESCING] = true;
  const write = stream.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    stream.uncork();
  };
  stream.write = function (this: Writable, ...args: unknown[]): boolean {
    if (!corked) {
      corked = true;
      stream.cork();
      process.nextTick(uncork);
    }
    return (write as (...a: unknown[]) => boolean).apply(stream, args);
  } as Writable['write'];
}

// --- The hot path (issue 18): publishing past amqp-connection-manager's queue. ---

/** amqp-connection-manager's ChannelWrapper internals that publishing straight to its channel reads. */
interface ChannelWrapperQueue {
  /** The live amqplib channel; undefined while disconnected. */
  _channel?: Channel;
  /** Set while the channel's setups run: publishes wait for them. */
  _settingUp?: unknown;
  /** Publishes waiting to be written, in order. */
  _messages?: unknown[];
  /** False once amqplib's write buffer was full; the wrapper's 'drain' handler sets it back. */
  _channelHasRoom?: boolean;
  _confirm?: boolean;
  /** Set with a `publishTimeout` or `json` option, which only the wrapper's own publish applies. */
  _publishTimeout?: number;
  _json?: boolean;
  /** False after a loss no reconnect mends (acm's IRRECOVERABLE_ERRORS): a failed publish is not queued again. */
  _canWaitReconnection?: () => boolean;
}

/**
 * Writes an unconfirmed publish (an RPC request or reply) straight to the wrapper's live amqplib
 * channel, when the wrapper would have done just that in this tick: it is connected, set up, has
 * room and holds nothing queued (so the order of publishes is kept). amqp-connection-manager's own
 * `publish()` costs two promises, a message object and an options copy per message, for an
 * unconfirmed publish that resolves at once anyway. Returns false, having written nothing, when
 * the wrapper must take it (disconnected, full, or a channel amqplib has already closed), so that
 * it is queued and sent after the reconnect as before. A room-less write leaves the wrapper
 * marked full, as its own write would, so later publishes queue behind it until 'drain'.
 */
export function publishUnconfirmed(
  wrapper: ChannelWrapper,
  exchange: string,
  routingKey: string,
  content: Buffer,
  options: Options.Publish,
): boolean {
  const queue = wrapper as unknown as ChannelWrapperQueue;
  const channel = queue._channel;
  if (channel === undefined || !writesNow(queue, false)) return false;
  try {
    queue._channelHasRoom = channel.publish(exchange, routingKey, content, options);
  } catch (err) {
    if (isChannelClosing(err)) return false;
    throw err;
  }
  return true;
}

/**
 * Whether the wrapper's own `publish()` would write to its channel in this very call: connected, of
 * the confirm mode asked, set up, with room and nothing queued before it (so order is kept).
 */
function writesNow(queue: ChannelWrapperQueue, confirm: boolean): boolean {
  return (
    queue._channel !== undefined &&
    queue._confirm === confirm &&
    queue._settingUp === undefined &&
    queue._channelHasRoom === true &&
    queue._messages?.length === 0
  );
}

/** amqplib's "Channel closed"/"Channel closing" on a write: the wrapper learns of it next and queues. */
function isChannelClosing(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'IllegalOperationError';
}

const DIRECT = Symbol('warren.directConfirmed');

/**
 * The direct publishes of a wrapper not yet confirmed (their promises' rejectors), failed with the
 * wrapper's own "Channel closed" when it is closed, as it fails the publishes it holds itself.
 */
function directPublishesOf(wrapper: ChannelWrapper): Set<(err: Error) => void> {
  const marked = wrapper as unknown as Record<symbol, Set<(err: Error) => void> | undefined>;
  let pending = marked[DIRECT];
  if (pending === undefined) {
    const created = (pending = marked[DIRECT] = new Set());
    wrapper.once('close', () => {
      const closed = new Error(PUBLISH_WRAPPER_CLOSED);
      for (const reject of created) reject(closed);
      created.clear();
    });
  }
  return pending;
}

/**
 * A confirmed publish written straight to the wrapper's live confirm channel, when the wrapper
 * would have written it in this very call (connected, set up, room, nothing queued before it, no
 * timeout option): resolved on the broker's basic.ack. amqp-connection-manager's own `publish()`
 * costs a message object, an options copy and two promises, and on every confirm a linear
 * `indexOf`/`splice` of its unconfirmed list (issue 18's pub/sub profile: `removeUnconfirmedMessage`
 * 1.4 %). What it does on a failure is kept: a publish whose channel is gone when amqplib fails
 * it (the connection was lost) and a reconnect can mend goes into the wrapper's queue and out
 * again on the next channel, as its `_messageRejected` does; any other failure (the broker's
 * nack, "channel closed" of a channel the broker closed, an encoding error) rejects; closing the
 * wrapper rejects it with "Channel closed". Undefined, having written nothing, when the wrapper
 * must take it.
 */
export function publishConfirmed(
  wrapper: ChannelWrapper,
  exchange: string,
  routingKey: string,
  content: Buffer,
  options: Options.Publish,
): Promise<void> | undefined {
  const queue = wrapper as unknown as ChannelWrapperQueue;
  const channel = queue._channel as ConfirmChannel | undefined;
  if (
    channel === undefined ||
    !writesNow(queue, true) ||
    queue._publishTimeout ||
    queue._json === true ||
    typeof queue._canWaitReconnection !== 'function'
  ) {
    return undefined;
  }
  const pending = directPublishesOf(wrapper);
  return new Promise<void>((resolve, reject) => {
    pending.add(reject);
    try {
      queue._channelHasRoom = channel.publish(exchange, routingKey, content, options, (err) => {
        // Already failed by the wrapper's close.
        if (!pending.delete(reject)) return;
        if (err === null || err === undefined) resolve();
        else if (queue._channel === undefined && queue._canWaitReconnection!()) {
          resolve(wrapper.publish(exchange, routingKey, content, options).then(NOTHING));
        } else reject(err);
      });
    } catch (err) {
      pending.delete(reject);
      if (isChannelClosing(err)) {
        resolve(wrapper.publish(exchange, routingKey, content, options).then(NOTHING));
      } else reject(err as Error);
    }
  });
}

const NOTHING = (): void => undefined;

/** amqp-connection-manager's ChannelWrapper internals that reopening a channel needs. */
interface ChannelWrapperInternals {
  /** What the wrapper runs on every connect: opens a channel and re-runs every setup. */
  _onConnect?: (event: { connection: unknown }) => Promise<void>;
  /** The live amqplib channel; undefined once it closed. */
  _channel?: unknown;
}

/**
 * Opens a fresh channel in `wrapper`, with every setup re-run, after the broker closed its channel
 * while the connection stayed up. amqp-connection-manager only does that on a reconnect, so the
 * wrapper would stay without a channel for good (jwalton/node-amqp-connection-manager#347): its
 * private `_onConnect` is the one way in. Without it (another version), reconnecting re-creates
 * every channel of the connection.
 */
export function reopenChannel(wrapper: ChannelWrapper, manager: AmqpConnectionManager): void {
  const internals = wrapper as unknown as ChannelWrapperInternals;
  if (typeof internals._onConnect !== 'function') {
    manager.reconnect();
    return;
  }
  // Unless a reconnect got there first.
  if (internals._channel === undefined) void internals._onConnect({ connection: manager.connection });
}

/** amqplib's Connection internals that reading frames goes through (lib/connection.js). */
interface FrameReader {
  /** Bytes read from the socket and not yet parsed into frames. */
  rest: Buffer;
  /** Parses and decodes the next frame of `rest`, reading the socket for more if needed. */
  recvFrame(): unknown;
}

const FRAME_HEADER = 2;
const FRAME_END = 0xce;
const GUARDED = Symbol('warren.guardedFrameDecoding');
/** Why a delivery's headers were not all decoded, keyed by its properties object. */
const undecoded = new WeakMap<object, string>();

/**
 * Keeps one message from taking a connection down. amqplib decodes a content header's field
 * tables recursively (lib/codec.js, `decodeFields`), inside its frame loop: a header nested ~10 000
 * deep (70 KB, well under frame_max) overflows the stack there, an unknown type tag throws, and
 * either error closes the whole connection — every consumer on it — and the broker redelivers the
 * message to the next connection, for ever. amqplib offers no hook into decoding; its decoder is
 * bound at load (`defs.js` keeps its own reference), so this wraps `Connection.prototype.recvFrame`
 * instead, once for the amqplib the connection came from: when decoding a content header frame
 * throws, that frame is decoded again by Warren's bounded, never-throwing decoder
 * (codec/amqp-properties-decoder.ts), which leaves out the headers it cannot decode.
 * `undecodedHeaders()` then tells the consumer why, and it treats the message as poison. The fast
 * path is amqplib's own: the wrapper costs one property read per frame. (Upstream: the text for
 * amqplib's issue is in docs/failures.md, "Hostile input".)
 */
export function guardFrameDecoding(connection: unknown): void {
  const inner = (connection as { connection?: object } | undefined)?.connection;
  const proto = inner && (Object.getPrototypeOf(inner) as Partial<FrameReader> & Record<symbol, boolean>);
  if (!proto || proto[GUARDED] || typeof proto.recvFrame !== 'function') return;
  const recvFrame = proto.recvFrame;
  proto[GUARDED] = true;
  proto.recvFrame = function (this: FrameReader): unknown {
    const rest = this.rest;
    try {
      return recvFrame.call(this);
    } catch (err) {
      // A frame that was whole in `rest` is the one that failed; otherwise amqplib read more and
      // recursed into this wrapper, which had its chance at the frame then.
      const frame = wholeHeaderFrame(rest);
      if (!frame) throw err;
      this.rest = rest.subarray(frame.end);
      return frame.decoded;
    }
  };
}

/** Why some of this delivery's headers were left out (see `guardFrameDecoding`), or undefined. */
export function undecodedHeaders(properties: object): string | undefined {
  return undecoded.get(properties);
}

/** A content header frame at the head of `buf`, whole, decoded as amqplib's frame.js would. */
function wholeHeaderFrame(buf: Buffer): { end: number; decoded: unknown } | undefined {
  if (!Buffer.isBuffer(buf) || buf.length < 7 || buf[0] !== FRAME_HEADER) return undefined;
  const size = buf.readUInt32BE(3);
  const end = 7 + size + 1;
  if (buf.length < end || buf[end - 1] !== FRAME_END || size < 12) return undefined;
  const payload = buf.subarray(7, 7 + size);
  const { properties, problem } = decodePropertiesSafely(payload.subarray(12));
  undecoded.set(properties, problem ?? 'the properties could not be decoded');
  const decoded: { id: number; channel: number; size: number; fields: DecodedProperties } = {
    id: payload.readUInt16BE(0),
    channel: buf.readUInt16BE(1),
    size: Number(payload.readBigUInt64BE(4)),
    fields: properties,
  };
  return { end, decoded };
}

const SETTLING = Symbol('warren.settleEncodeFailures');

/**
 * Makes a publish that amqplib cannot encode fail instead of hanging. amqplib encodes a message's
 * frames inside `publish()` and throws there (lib/connection.js, `sendMessage`, before writing
 * anything, and `ConfirmChannel.publish` registers its confirm callback only after); but
 * amqp-connection-manager calls it inside its batch loop, whose `catch` only emits 'error': the
 * message has left its queue, its promise never settles, and the loop stops until the next
 * publish. Turning the throw into the confirm callback's error lets amqp-connection-manager reject
 * that one publish and go on. Warren checks every property before publishing (publisher/
 * amqp-headers.ts); this is for what the checks miss.
 */
export function settleEncodeFailures(channel: ConfirmChannel): void {
  const marked = channel as unknown as Record<symbol, boolean>;
  if (marked[SETTLING]) return;
  marked[SETTLING] = true;
  const publish = channel.publish;
  channel.publish = function (this: ConfirmChannel, exchange, routingKey, content, options, callback) {
    try {
      return publish.call(this, exchange, routingKey, content, options, callback);
    } catch (err) {
      if (typeof callback !== 'function') throw err;
      callback(err, undefined as never);
      return true;
    }
  } as ConfirmChannel['publish'];
}

/**
 * Nest's ExternalContextCreator whose exception filters stay quiet when none of the app's own
 * takes an error: the error is thrown on to Warren, which logs each failed delivery once, with
 * what happens to the message next. The shared creator's fallback (`ExternalExceptionsHandler`
 * → `ExternalExceptionFilter`, @nestjs/core 12.5.1) logs every error as `ERROR [ExceptionsHandler]`
 * with its stack before throwing it on: three attempts, three stacks, besides Warren's lines.
 * The app's filters (global, class, method) still run first, exactly as Nest would run them
 * (`invokeCustomFilters`, a public method); only the private `externalErrorProxy` that applies
 * them is Warren's, on an object deriving from the shared creator, which itself is untouched.
 */
export function quietExceptionFallback(contextCreator: ExternalContextCreator): ExternalContextCreator {
  const quiet = Object.create(contextCreator) as ExternalContextCreator;
  const proxy = {
    createProxy(
      target: (...args: unknown[]) => Promise<unknown>,
      handler: ExternalExceptionsHandler,
      type: string,
    ): (...args: unknown[]) => Promise<unknown> {
      return async (...args) => {
        try {
          return await target(...args);
        } catch (err) {
          const host = new ExecutionContextHost(args);
          host.setType(type);
          // `undefined` is Nest's "no filter took it".
          const handled: unknown = handler.invokeCustomFilters(err, host);
          if (handled === undefined) throw err;
          return handled;
        }
      };
    },
  };
  Object.defineProperty(quiet, 'externalErrorProxy', { value: proxy });
  return quiet;
}

// --- The hot path (issue 18): a handler Nest's enhancer machinery would do nothing for. ---

/** What Nest's ExternalContextCreator found for one handler as it created the handler's proxy. */
export interface EnhancerCensus {
  /** Global, class and method guards. */
  guards: number;
  interceptors: number;
  /** Exception filters (global, class, method): the quiet fallback is not one. */
  filters: number;
  /** Parameter decorators (`@Payload()`, `@Ctx()`, `@Header()`...): where pipes would apply. */
  params: number;
}

/** The ExternalContextCreator internals (@nestjs/core 12.5.1, helpers/external-context-creator.js) the census reads. */
interface ContextCreatorInternals {
  guardsContextCreator?: { create?: (...args: unknown[]) => unknown };
  interceptorsContextCreator?: { create?: (...args: unknown[]) => unknown };
  filtersContextCreator?: { create?: (...args: unknown[]) => unknown };
  getMetadata?: (...args: unknown[]) => { getParamsMetadata?: (...args: unknown[]) => unknown };
}

/**
 * Runs `create` (which calls `creator.create(...)` once) on a creator deriving from
 * `contextCreator` that records what Nest resolved for the handler: the very guard, interceptor
 * and filter arrays and parameter metadata its proxy then closes over (global enhancers included,
 * as Nest reads them at creation). With none of them, the proxy only calls the method with the
 * handler's arguments and awaits its result (an Observable's last value), through four async
 * functions a delivery: discovery may then call the method itself (`HandlerFactory`). The census
 * is undefined when this Nest keeps its creators elsewhere: the proxy is then used, as always.
 */
export function createWithEnhancerCensus<R>(
  contextCreator: ExternalContextCreator,
  create: (creator: ExternalContextCreator) => R,
): { created: R; census: EnhancerCensus | undefined } {
  const real = contextCreator as unknown as ContextCreatorInternals;
  const {
    guardsContextCreator: guards,
    interceptorsContextCreator: interceptors,
    filtersContextCreator: filters,
  } = real;
  const getMetadata = real.getMetadata;
  if (
    typeof guards?.create !== 'function' ||
    typeof interceptors?.create !== 'function' ||
    typeof filters?.create !== 'function' ||
    typeof getMetadata !== 'function'
  ) {
    return { created: create(contextCreator), census: undefined };
  }
  const census = { guards: -1, interceptors: -1, filters: -1, params: -1 };
  const length = (made: unknown) => (Array.isArray(made) ? made.length : -1);
  const recording = (creator: { create?: (...args: unknown[]) => unknown }, count: (made: unknown) => void) => ({
    create: (...args: unknown[]) => {
      const made = creator.create!.apply(creator, args);
      count(made);
      return made;
    },
  });
  const probe = Object.create(contextCreator) as Record<string, unknown>;
  probe.guardsContextCreator = recording(guards, (made) => (census.guards = length(made)));
  probe.interceptorsContextCreator = recording(interceptors, (made) => (census.interceptors = length(made)));
  // An ExternalExceptionsHandler: its `filters` are the custom filters it would try.
  probe.filtersContextCreator = recording(
    filters,
    (made) => (census.filters = length((made as { filters?: unknown })?.filters)),
  );
  probe.getMetadata = function (this: unknown, ...args: unknown[]) {
    const metadata = getMetadata.apply(this, args);
    const getParamsMetadata = metadata?.getParamsMetadata;
    if (typeof getParamsMetadata !== 'function') return metadata;
    return {
      ...metadata,
      getParamsMetadata: (...params: unknown[]) => {
        const made = getParamsMetadata(...params);
        census.params = made === null || made === undefined ? 0 : length(made);
        return made;
      },
    };
  };
  const created = create(probe as unknown as ExternalContextCreator);
  const complete = Object.values(census).every((n) => n >= 0);
  return { created, census: complete ? census : undefined };
}

/** Base class of every error Warren throws, so apps can tell them apart from their own. */
export class WarrenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A decorator was given arguments it cannot use. Thrown when the class is defined. */
export class WarrenDecoratorError extends WarrenError {}

/** The declared topology contradicts itself or RabbitMQ's rules. Thrown at boot, before anything reaches the broker. */
export class TopologyError extends WarrenError {}

/**
 * The app's Warren setup does not hold together: a handler names a connection no `WarrenModule`
 * registers, two modules register the same name, a module, token or contract is asked for with
 * arguments Warren cannot use. Thrown at boot (or where the contract is defined), before any
 * declaration.
 */
export class WarrenConfigurationError extends WarrenError {}

/** The broker could not be reached, or refused the connection, or a connection was asked for before it was opened. */
export class WarrenConnectionError extends WarrenError {}

/** A publish was refused before anything was sent, or the broker did not confirm it. */
export class PublishError extends WarrenError {}

/**
 * A `mandatory` publish that no queue took: the broker returned it (basic.return, `312 NO_ROUTE`)
 * rather than drop it: no queue is bound to the exchange for that routing key, or the queue does
 * not exist. Nothing was delivered.
 */
export class UnroutableError extends PublishError {
  constructor(
    readonly exchange: string,
    readonly routingKey: string,
    /** The broker's reply, `312 NO_ROUTE`. */
    readonly reply: string,
  ) {
    const target =
      exchange === '' ? `queue "${routingKey}"` : `exchange "${exchange}" with routing key "${routingKey}"`;
    super(
      `Cannot publish to ${target}: the broker returned it unroutable (${reply}): ` +
        (exchange === '' ? `no queue of that name exists` : `no queue is bound to the exchange for that routing key`),
    );
  }
}

/**
 * A message that can never be handled, whatever the number of attempts (undecodable body, payload
 * that fails validation): it is dead-lettered at once, never retried.
 */
export class PoisonMessageError extends WarrenError {}

/**
 * A handler threw something that is not an Error (exception filters written for
 * @nestjs/microservices throw plain objects): the thrown value is in `error`.
 */
export class RemoteHandlerError extends WarrenError {
  constructor(readonly error: unknown) {
    super(describeThrown(error));
  }
}

/** What a thrown non-Error says, without throwing itself (a getter or a Proxy may). */
function describeThrown(error: unknown): string {
  try {
    const message = (error as { message?: unknown } | null)?.message;
    return typeof message === 'string' ? message : (JSON.stringify(error) ?? String(error));
  } catch {
    return 'an error that cannot be described (reading it threw)';
  }
}

/** A message body could not be decoded: poison, since no retry can make it decodable. */
export class MessageDecodeError extends PoisonMessageError {}

/**
 * A message whose content type no codec reads (neither a built-in one nor one of the module's
 * `codecs`): poison, dead-lettered naming the content type, never handed to the handler as bytes
 * it would misread.
 */
export class UnsupportedContentTypeError extends MessageDecodeError {
  constructor(readonly contentType: string) {
    super(
      `no codec for content type "${contentType}": register one in the module's codecs ` +
        `(built in: application/json and */*+json, text/*, application/octet-stream)`,
    );
  }
}

/**
 * A payload that its handler's pipes refused (`ValidationPipe`, `ParseIntPipe`...): a poison
 * message, with what the pipes said in `messages`.
 */
/**
 * A message on a service queue that none of the queue's handlers is bound for (a binding an older
 * deploy left on the broker, a redrive to the wrong queue): dead-lettered with reason `no-handler`.
 */
export class NoHandlerError extends PoisonMessageError {}

export class PayloadValidationError extends PoisonMessageError {
  constructor(
    readonly messages: string[],
    options?: { cause?: unknown },
  ) {
    super(`Payload failed validation: ${messages.join('; ')}`, options);
  }
}

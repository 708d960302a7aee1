import { WarrenError } from '../warren.errors.js';

/** No reply within the call's timeout. */
export class RpcTimeoutError extends WarrenError {
  constructor(
    readonly queue: string,
    readonly timeoutMs: number,
  ) {
    super(`RPC to "${queue}" got no reply within ${timeoutMs} ms`);
  }
}

/**
 * The server's handler threw; its error's name, message and code travel in the reply, and for an
 * `HttpException` (`NotFoundException`...) its `status` and `response` too:
 * `RpcRemoteErrorFilter` turns them back into the same HTTP answer.
 */
export class RpcRemoteError extends WarrenError {
  /** The remote `HttpException`'s status, when it threw one. */
  readonly status?: number;
  /** The remote `HttpException`'s response body, when it threw one. */
  readonly response?: unknown;

  constructor(
    readonly queue: string,
    readonly remoteName: string,
    readonly remoteMessage: string,
    readonly code?: string | number,
    readonly remoteStack?: string,
    http: { status?: number; response?: unknown } = {},
  ) {
    const status = http.status !== undefined ? ` (status ${http.status})` : '';
    super(
      `RPC to "${queue}" failed remotely: ${remoteName}: ${remoteMessage}${code !== undefined ? ` (code ${code})` : ''}${status}`,
    );
    if (http.status !== undefined) this.status = http.status;
    if (http.response !== undefined) this.response = http.response;
  }
}

/** The broker could route the request to no queue: nothing serves it. */
export class RpcNoRouteError extends WarrenError {
  constructor(
    readonly target: string,
    readonly replyText: string,
  ) {
    super(`RPC to ${target} cannot be delivered: no queue is bound to receive it (${replyText})`);
  }
}

/**
 * The channel that carried the request and would carry its reply went away (connection lost,
 * broker restart). The server may or may not have processed the request.
 */
export class RpcChannelLostError extends WarrenError {
  constructor(readonly queue: string) {
    super(
      `RPC to "${queue}" lost its reply channel before the reply arrived; the request may or may not have been processed`,
    );
  }
}

/** The client was closed (app shutdown) while the call was pending. */
export class RpcClientClosedError extends WarrenError {
  constructor(readonly queue: string) {
    super(`RPC to "${queue}" cancelled: the RpcClient is shutting down`);
  }
}

/**
 * The broker has not been reachable since the app started (`waitForBroker: false`): the request
 * was not sent. Fails at once rather than at the call's timeout, so an HTTP caller can answer 503
 * straight away.
 */
export class RpcUnavailableError extends WarrenError {
  constructor(readonly queue: string) {
    super(
      `RPC to "${queue}" not sent: the broker has not been reachable since the app started (waitForBroker: false); the app is not ready`,
    );
  }
}

import { type ArgumentsHost, Catch, HttpException, HttpStatus } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { RpcRemoteError } from './rpc-errors.js';

/**
 * Answers an HTTP request whose RPC failed remotely as the remote handler would have answered
 * it: a `NotFoundException` thrown by an `@RpcHandler` becomes the same 404 with the same body
 * at the calling controller. A remote error that was no `HttpException` stays a 500, as any
 * unexpected error. Outside HTTP (an RPC handler calling another), the error goes on unchanged.
 *
 * ```ts
 * providers: [{ provide: APP_FILTER, useClass: RpcRemoteErrorFilter }]   // or @UseFilters(RpcRemoteErrorFilter)
 * ```
 */
@Catch(RpcRemoteError)
export class RpcRemoteErrorFilter extends BaseExceptionFilter {
  override catch(error: RpcRemoteError, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw error;
    if (error.status === undefined) return super.catch(error, host);
    const response = error.response ?? { statusCode: error.status, message: error.remoteMessage };
    super.catch(
      new HttpException(response as string | Record<string, unknown>, error.status as HttpStatus, { cause: error }),
      host,
    );
  }
}

/**
 * How a reply says it is an error: this header, with a JSON body `{ name, message, code?, stack? }`.
 * Anything without the header is a successful reply, whoever sent it.
 */
export const RPC_ERROR_HEADER = 'x-warren-error';

export interface RpcErrorBody {
  name: string;
  message: string;
  code?: string | number;
  stack?: string;
}

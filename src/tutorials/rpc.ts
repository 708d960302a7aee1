import { Injectable, Module } from '@nestjs/common';
import { defineRpc, RpcClient, RpcHandler } from 'nestjs-warren';
import { type Program, UsageError } from './program.js';
import { warren } from './broker.js';

/** Tutorial 6's contract, shared by server and client: fib(n) on the queue `rpc_queue`. */
export const Fibonacci = defineRpc<number, number>('rpc_queue');

export function fib(n: number): number {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

@Injectable()
class FibonacciServer {
  // Not durable, prefetch 1: as the tutorial declares rpc_queue, so its programs in other
  // languages can share the queue with this one.
  @RpcHandler(Fibonacci, { durable: false, prefetch: 1 })
  onRequest(n: number): number {
    // Other languages' clients send the number as plain text: it arrives as a string.
    const value = Number(n);
    console.log(` [.] fib(${value})`);
    return fib(value);
  }
}

@Module({ imports: [warren()], providers: [FibonacciServer] })
class RpcServerModule {}

export const rpcServer: Program = {
  name: 'rpc_server',
  usage: 'rpc_server                 answers fib(n) requests on rpc_queue',
  module: () => RpcServerModule,
  async run() {
    console.log(' [x] Awaiting RPC requests');
  },
};

export const rpcClient: Program = {
  name: 'rpc_client',
  usage: 'rpc_client [n]             asks rpc_server for fib(n) (default 30)',
  module: (args) => {
    if (args[0] !== undefined && !/^\d+$/.test(args[0]))
      throw new UsageError('Usage: rpc_client [n]  (n a whole number)');
    return { module: class RpcClientModule {}, imports: [warren()] };
  },
  async run(app, args) {
    const n = Number(args[0] ?? 30);
    console.log(` [x] Requesting fib(${n})`);
    const reply = await app.get(RpcClient).call(Fibonacci, n);
    console.log(` [.] Got ${reply}`);
    return 'done';
  },
};

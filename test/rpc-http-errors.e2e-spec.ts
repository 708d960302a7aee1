import {
  ConflictException,
  Controller,
  Get,
  Injectable,
  type INestApplication,
  type INestApplicationContext,
  NotFoundException,
  Param,
  ParseIntPipe,
} from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import {
  defineRpc,
  Payload,
  RpcClient,
  RpcHandler,
  RpcRemoteError,
  RpcRemoteErrorFilter,
  WarrenModule,
} from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, unique } from './support/broker.js';

// An HttpException thrown by an @RpcHandler reaches the caller with its status and response, and
// RpcRemoteErrorFilter answers the calling controller's HTTP request as the handler would have.

const FindOrder = defineRpc<{ id: string }, { id: number }>(unique('e2e.rpc-http.find'));
const CRASHING = unique('e2e.rpc-http.crashing');

@Injectable()
class OrderServer {
  // ParseIntPipe makes the contract's string id a number: the payload check is waived, the reply's kept.
  @RpcHandler<any, { id: number }>(FindOrder, { durable: false })
  find(@Payload('id', ParseIntPipe) id: number) {
    if (id === 7) throw new NotFoundException(`no order with id ${id}`);
    if (id === 9) throw new ConflictException({ reason: 'locked', id });
    return { id };
  }

  @RpcHandler(CRASHING, { durable: false })
  crash(): never {
    throw new Error('database unreachable');
  }
}

@Controller('orders')
class OrdersGateway {
  constructor(private readonly rpc: RpcClient) {}

  @Get('crash')
  crash() {
    return this.rpc.call(CRASHING, {});
  }

  @Get(':id')
  find(@Param('id') id: string) {
    return this.rpc.call(FindOrder, { id });
  }

  /** What the same exception answers when thrown here, for comparison. */
  @Get('local/:id')
  local(@Param('id') id: string) {
    throw new NotFoundException(`no order with id ${id}`);
  }
}

let server: INestApplicationContext;
let gateway: INestApplication;
let base: string;

beforeAll(async () => {
  server = await bootApp({ providers: [OrderServer] }, { connectionName: unique('e2e-rpc-http-server') });
  const moduleRef = await Test.createTestingModule({
    imports: [WarrenModule.forRoot({ url: brokerUrl(), connectionName: unique('e2e-rpc-http-gateway') })],
    controllers: [OrdersGateway],
    providers: [{ provide: APP_FILTER, useClass: RpcRemoteErrorFilter }],
  }).compile();
  gateway = moduleRef.createNestApplication({ logger: false });
  await gateway.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${(gateway.getHttpServer().address() as AddressInfo).port}`;
}, 30_000);

afterAll(async () => {
  await gateway?.close();
  await server?.close();
  await deleteTopology({ queues: [FindOrder.queue, CRASHING] });
});

async function get(path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.json() };
}

describe('HttpException in an @RpcHandler', () => {
  it('reaches the caller as an RpcRemoteError with its status and response', async () => {
    const error = await gateway
      .get(RpcClient)
      .call(FindOrder, { id: '7' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcRemoteError);
    expect(error).toMatchObject({
      remoteName: 'NotFoundException',
      remoteMessage: 'no order with id 7',
      status: 404,
      response: { statusCode: 404, message: 'no order with id 7', error: 'Not Found' },
    });
    expect((error as Error).message).toBe(
      `RPC to "${FindOrder.queue}" failed remotely: NotFoundException: no order with id 7 (status 404)`,
    );
  });

  it('is answered by RpcRemoteErrorFilter with the same HTTP status and body as a local throw', async () => {
    const remote = await get('/orders/7');
    const local = await get('/orders/local/7');
    expect(remote).toEqual({
      status: 404,
      body: { statusCode: 404, message: 'no order with id 7', error: 'Not Found' },
    });
    expect(remote).toEqual(local);
    // A custom response body travels as it is.
    expect(await get('/orders/9')).toEqual({ status: 409, body: { reason: 'locked', id: 9 } });
    // What a pipe refuses on the server is a 400 at the gateway too.
    expect(await get('/orders/seven')).toEqual({
      status: 400,
      body: { statusCode: 400, message: 'Validation failed (numeric string is expected)', error: 'Bad Request' },
    });
    expect(await get('/orders/5')).toEqual({ status: 200, body: { id: 5 } });
  });

  it('leaves a remote error that was no HttpException a 500, without its message', async () => {
    expect(await get('/orders/crash')).toEqual({
      status: 500,
      body: { statusCode: 500, message: 'Internal server error' },
    });
  });
});

// The default without the filter is Nest's own: an unknown error, 500.
describe('without RpcRemoteErrorFilter', () => {
  it('answers 500, as for any error Nest does not know', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [WarrenModule.forRoot({ url: brokerUrl(), connectionName: unique('e2e-rpc-http-plain') })],
      controllers: [OrdersGateway],
    }).compile();
    const plain = moduleRef.createNestApplication({ logger: false });
    await plain.listen(0, '127.0.0.1');
    try {
      const port = (plain.getHttpServer().address() as AddressInfo).port;
      const response = await fetch(`http://127.0.0.1:${port}/orders/7`, { signal: AbortSignal.timeout(10_000) });
      expect(response.status).toBe(500);
    } finally {
      await plain.close();
    }
  });
});

import {
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  Catch,
  type ExceptionFilter,
  type ExecutionContext,
  Inject,
  Injectable,
  type INestApplicationContext,
  type NestInterceptor,
  ParseIntPipe,
  Scope,
  UseFilters,
  UseGuards,
  UseInterceptors,
  ValidationPipe,
} from '@nestjs/common';
import { APP_INTERCEPTOR, type ContextId, ContextIdFactory, type HostComponentInfo, REQUEST } from '@nestjs/core';
import amqplib, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { IsInt, IsString, Min } from 'class-validator';
import {
  Consume,
  Ctx,
  FAILURE_HEADERS,
  PayloadValidationError,
  Payload,
  PoisonMessageError,
  Publisher,
  RpcClient,
  RpcHandler,
  RpcRemoteError,
  Subscribe,
  WarrenContext,
} from 'nestjs-warren';
import { map, type Observable, tap } from 'rxjs';
import { HandlerFactory } from '../libs/warren/src/discovery/handler-factory.js';
import { bootApp } from './support/app.js';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';

const EXCHANGE = unique('e2e.enh.topic');
const WORK = unique('e2e.enh.work');
const EVENTS = unique('e2e.enh.events');
const QUOTE = unique('e2e.enh.quote');
const BY_VALUE = unique('e2e.enh.by-value');
const BY_FACTORY = unique('e2e.enh.by-factory');
const BY_CLASS = unique('e2e.enh.by-class');
const PER_MESSAGE = unique('e2e.enh.per-message');
const PER_MESSAGE_RPC = unique('e2e.enh.per-message-rpc');
const PER_TENANT = unique('e2e.enh.per-tenant');

// Warren's failure policy dead-letters to `<queue>.dlq`.
const WORK_DLQ = `${WORK}.dlq`;
const EVENTS_DLQ = `${EVENTS}.dlq`;

/** What the enhancers and handlers saw, in order. */
const log: string[] = [];
const handled: { kind: string; order: OrderDto; isDto: boolean }[] = [];
const timed: { handler: string; result: unknown; ms: number }[] = [];
const plain: { payload: unknown; isContext: boolean; routingKey: string }[] = [];
const quantities: unknown[] = [];

class OrderDto {
  @IsString() sku!: string;
  @IsInt() @Min(1) qty!: number;
}

class OutOfStock extends Error {
  override name = 'OutOfStock';
}
class Discontinued extends Error {}

/** Refuses messages that carry the header `x-deny`. */
@Injectable()
class NoDeniedMessages implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const message = context.switchToRpc().getContext<WarrenContext>();
    if (message.headers['x-deny'] === undefined) return true;
    log.push(`guard refused ${context.getClass().name}.${context.getHandler().name}`);
    return false;
  }
}

/** Times the handler and records its result. */
@Injectable()
class Timing implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const started = performance.now();
    const handler = `${context.getClass().name}.${context.getHandler().name}`;
    return next.handle().pipe(tap((result) => timed.push({ handler, result, ms: performance.now() - started })));
  }
}

/** Wraps an RPC reply. */
@Injectable()
class Envelope implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((reply) => ({ reply, interceptedBy: 'Envelope' })));
  }
}

/** Global (APP_INTERCEPTOR): sees every handler, with the context type of an RPC. */
@Injectable()
class SeesEverything implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    log.push(`global ${context.getType()} ${context.getClass().name}.${context.getHandler().name}`);
    return next.handle();
  }
}

/** Its return value becomes the reply (RPC), or settles the message as handled. */
@Catch(OutOfStock)
class OutOfStockAsReply implements ExceptionFilter {
  catch(error: OutOfStock, host: ArgumentsHost) {
    log.push(`filter caught ${error.message}`);
    return { outOfStock: error.message, queue: host.switchToRpc().getContext<WarrenContext>().queue };
  }
}

/** What it throws becomes the error reply. */
@Catch(Discontinued)
class DiscontinuedAsError implements ExceptionFilter {
  catch(error: Discontinued): never {
    throw Object.assign(new Error(`sku ${error.message} is discontinued`), { name: 'Discontinued', code: 'GONE' });
  }
}

@Injectable()
@UseGuards(NoDeniedMessages)
@UseFilters(OutOfStockAsReply, DiscontinuedAsError)
class Orders {
  @Consume(WORK, { durable: false, prefetch: 1, failure: 'dead-letter' })
  @UseInterceptors(Timing)
  onWork(@Payload(new ValidationPipe({ transform: true })) order: OrderDto) {
    return this.handle('consume', order);
  }

  @Subscribe(EXCHANGE, 'order.*', {
    queue: EVENTS,
    durable: false,
    prefetch: 1,
    failure: 'dead-letter',
    exchangeOptions: { durable: false },
  })
  @UseInterceptors(Timing)
  onEvent(@Payload(new ValidationPipe({ transform: true })) order: OrderDto) {
    return this.handle('subscribe', order);
  }

  @RpcHandler(QUOTE, { durable: false })
  @UseInterceptors(Envelope)
  quote(@Payload(new ValidationPipe({ transform: true })) order: OrderDto, @Ctx() message: WarrenContext) {
    return { ...this.handle('rpc', order), queue: message.queue };
  }

  @Subscribe(EXCHANGE, 'qty.*', { exchangeOptions: { durable: false } })
  onQuantity(@Payload('qty', ParseIntPipe) qty: number) {
    quantities.push(qty);
  }

  private handle(kind: string, order: OrderDto) {
    if (order.sku === 'out-of-stock') throw new OutOfStock(order.sku);
    if (order.sku === 'discontinued') throw new Discontinued(order.sku);
    if (order.sku === 'unfiltered') throw new Error('no filter catches this');
    handled.push({ kind, order, isDto: order instanceof OrderDto });
    return { sku: order.sku, total: order.qty * 2 };
  }
}

@Injectable()
class Plain {
  @Subscribe(EXCHANGE, 'plain.*', { exchangeOptions: { durable: false } })
  on(payload: unknown, context: WarrenContext) {
    plain.push({ payload, isContext: context instanceof WarrenContext, routingKey: context.routingKey });
  }
}

// Providers of every kind. Nest does not scan the class of a useValue or useFactory provider,
// so enhancers there are bound as instances.
class ByValue {
  @RpcHandler(BY_VALUE, { durable: false })
  @UseInterceptors(new Envelope())
  answer(n: number) {
    return { n, from: 'useValue' };
  }
}

@Injectable()
class Dependency {
  readonly name = 'injected';
}

class ByFactory {
  constructor(private readonly dependency: Dependency) {}

  @RpcHandler(BY_FACTORY, { durable: false })
  @UseInterceptors(new Envelope())
  answer(n: number) {
    return { n, from: `useFactory with ${this.dependency.name}` };
  }
}

@Injectable()
class ByClass {
  @RpcHandler(BY_CLASS, { durable: false })
  @UseInterceptors(Envelope)
  answer(n: number) {
    return { n, from: 'useClass' };
  }
}

// Request scope: one instance per message, with the message as REQUEST.
@Injectable({ scope: Scope.REQUEST })
class MessageScoped {
  constructor(@Inject(REQUEST) readonly message: WarrenContext) {}
}

const perMessage: { n: number; serial: number; requestIsContext: boolean; dependencyRequestIsContext: boolean }[] = [];

@Injectable({ scope: Scope.REQUEST })
class PerMessage {
  static created = 0;
  readonly serial = ++PerMessage.created;

  constructor(
    @Inject(REQUEST) private readonly request: WarrenContext,
    private readonly scoped: MessageScoped,
  ) {}

  @Consume(PER_MESSAGE, { durable: false, failure: 'drop' })
  @UseInterceptors(Timing)
  onMessage(@Payload('n') n: number, @Ctx() context: WarrenContext) {
    perMessage.push({
      n,
      serial: this.serial,
      requestIsContext: this.request === context,
      dependencyRequestIsContext: this.scoped.message === context,
    });
  }

  @RpcHandler(PER_MESSAGE_RPC, { durable: false })
  @UseGuards(NoDeniedMessages)
  whoAmI(@Ctx() context: WarrenContext) {
    return { serial: this.serial, requestIsContext: this.request === context };
  }
}

// Durable: one instance per tenant (the `x-tenant` header), through a ContextIdStrategy.
const tenants = new Map<string, ContextId>();
const byTenant = {
  attach(contextId: ContextId, request: unknown) {
    if (!(request instanceof WarrenContext)) return undefined;
    const tenant = String(request.headers['x-tenant']);
    if (!tenants.has(tenant)) tenants.set(tenant, ContextIdFactory.create());
    const tenantId = tenants.get(tenant)!;
    return { resolve: (info: HostComponentInfo) => (info.isTreeDurable ? tenantId : contextId), payload: { tenant } };
  },
};

@Injectable({ scope: Scope.REQUEST, durable: true })
class PerTenant {
  static created = 0;
  readonly serial = ++PerTenant.created;
  private count = 0;

  constructor(@Inject(REQUEST) private readonly request: { tenant: string }) {}

  @RpcHandler(PER_TENANT, { durable: false })
  next() {
    return { tenant: this.request.tenant, serial: this.serial, count: ++this.count };
  }
}

let app: INestApplicationContext;
let publisher: Publisher;
let client: RpcClient;
let connection: ChannelModel;
let channel: Channel;

beforeAll(async () => {
  app = await bootApp(
    {
      providers: [
        Orders,
        Plain,
        Dependency,
        MessageScoped,
        PerMessage,
        PerTenant,
        { provide: APP_INTERCEPTOR, useClass: SeesEverything },
        { provide: 'BY_VALUE', useValue: new ByValue() },
        {
          provide: 'BY_FACTORY',
          useFactory: (dependency: Dependency) => new ByFactory(dependency),
          inject: [Dependency],
        },
        { provide: 'BY_CLASS', useClass: ByClass },
        // An alias of a handler provider must not register its handlers a second time (that
        // would be a boot error: one queue consumed by two methods).
        { provide: 'BY_CLASS_ALIAS', useExisting: 'BY_CLASS' },
      ],
    },
    { connectionName: 'e2e-enhancers' },
  );
  publisher = app.get(Publisher);
  client = app.get(RpcClient);
  connection = await amqplib.connect(brokerUrl());
  channel = await connection.createChannel();
});

afterAll(async () => {
  await app?.close();
  await connection?.close();
  await deleteTopology({
    exchanges: [EXCHANGE],
    // RPC queues get a dead-letter queue too (for poison requests).
    queues: [WORK, EVENTS, QUOTE, BY_VALUE, BY_FACTORY, BY_CLASS, PER_MESSAGE, PER_MESSAGE_RPC, PER_TENANT].flatMap(
      (q) => [q, `${q}.dlq`],
    ),
  });
});

/** The next message dead-lettered to `queue`: its payload and the error Warren recorded. */
async function nextDeadLetter(queue: string): Promise<{ payload: unknown; error: unknown; reason: unknown }> {
  let message: GetMessage | false = false;
  await waitUntil(`a message dead-lettered to ${queue}`, async () => {
    message = await channel.get(queue, { noAck: true });
    return message !== false;
  });
  const { content, properties } = message as unknown as GetMessage;
  return {
    payload: JSON.parse(content.toString()),
    error: properties.headers?.[FAILURE_HEADERS.errorName],
    reason: properties.headers?.[FAILURE_HEADERS.reason],
  };
}

async function queueDepth(queue: string): Promise<number> {
  return (await channel.checkQueue(queue)).messageCount;
}

function fakeContext(headers: Record<string, unknown> = {}): WarrenContext {
  const message = {
    content: Buffer.alloc(0),
    fields: { exchange: '', routingKey: WORK, redelivered: false, deliveryTag: 1 },
    properties: { headers },
  };
  return new WarrenContext(message as never, WORK, { ack() {}, nack() {} } as never);
}

describe('handlers without parameter decorators', () => {
  it('still receive (payload, context)', async () => {
    await publisher.publish(EXCHANGE, 'plain.hello', { hello: 'rabbit' });
    await waitUntil('the plain handler', () => plain.length === 1);
    expect(plain[0]).toEqual({ payload: { hello: 'rabbit' }, isContext: true, routingKey: 'plain.hello' });
  });
});

describe('global enhancers', () => {
  it('apply to every handler kind, with the rpc context type', async () => {
    await publisher.sendToQueue(WORK, { sku: 'global-consume', qty: 1 });
    await publisher.publish(EXCHANGE, 'order.global', { sku: 'global-subscribe', qty: 1 });
    await client.call(QUOTE, { sku: 'global-rpc', qty: 1 });
    await waitUntil('both messages handled', () =>
      ['global-consume', 'global-subscribe'].every((sku) => handled.some((h) => h.order.sku === sku)),
    );
    expect(log).toEqual(
      expect.arrayContaining(['global rpc Orders.onWork', 'global rpc Orders.onEvent', 'global rpc Orders.quote']),
    );
  });
});

describe.each([
  {
    kind: 'consume',
    handler: 'Orders.onWork',
    dlq: WORK_DLQ,
    send: (payload: unknown, headers?: Record<string, unknown>) => publisher.sendToQueue(WORK, payload, { headers }),
  },
  {
    kind: 'subscribe',
    handler: 'Orders.onEvent',
    dlq: EVENTS_DLQ,
    send: (payload: unknown, headers?: Record<string, unknown>) =>
      publisher.publish(EXCHANGE, 'order.placed', payload, { headers }),
  },
])('@$kind handlers', ({ kind, handler, dlq, send }) => {
  const seen = (sku: string) => handled.filter((h) => h.kind === kind && h.order.sku === sku);

  it('a refusing guard keeps the message from the handler; the failure policy gets a ForbiddenException', async () => {
    const sku = unique('denied');
    await send({ sku, qty: 1 }, { 'x-deny': 'yes' });
    // Rejected without requeue, the queue dead-letters it.
    await expect(nextDeadLetter(dlq)).resolves.toMatchObject({ payload: { sku, qty: 1 }, error: 'ForbiddenException' });
    expect(log).toContain(`guard refused ${handler}`);
    expect(seen(sku)).toEqual([]);
  });

  it('a ValidationPipe on @Payload() hands over the DTO, and dead-letters a payload that fails it', async () => {
    const sku = unique('valid');
    await send({ sku, qty: 2 });
    await waitUntil('the valid order', () => seen(sku).length === 1);
    expect(seen(sku)[0]).toMatchObject({ isDto: true, order: { sku, qty: 2 } });

    const invalid = { sku: 42, qty: 0 };
    await send(invalid);
    await expect(nextDeadLetter(dlq)).resolves.toEqual({
      payload: invalid,
      error: 'PayloadValidationError',
      reason: 'poison',
    });
  });

  it('an interceptor runs around the handler and sees its result', async () => {
    const sku = unique('timed');
    await send({ sku, qty: 3 });
    await waitUntil('the timing', () => timed.some((t) => t.handler === handler && (t.result as any)?.sku === sku));
    const timing = timed.find((t) => (t.result as any)?.sku === sku)!;
    expect(timing.result).toEqual({ sku, total: 6 });
    expect(timing.ms).toBeGreaterThanOrEqual(0);
  });

  it('an exception filter that returns a value settles the message as handled', async () => {
    await send({ sku: 'out-of-stock', qty: 1 });
    // With prefetch 1 the next message is delivered only once the first is settled: had the
    // filtered one been rejected, it would reach the dead-letter queue first.
    await send({ sku: 'unfiltered', qty: 1 });
    await expect(nextDeadLetter(dlq)).resolves.toMatchObject({
      payload: { sku: 'unfiltered', qty: 1 },
      error: 'Error',
    });
    expect(await queueDepth(dlq)).toBe(0);
    expect(log).toContain('filter caught out-of-stock');
  });
});

describe('parameter pipes', () => {
  it('@Payload(property, pipe) extracts and transforms one property', async () => {
    await publisher.publish(EXCHANGE, 'qty.changed', { qty: '17' });
    await waitUntil('the quantity', () => quantities.length === 1);
    expect(quantities).toEqual([17]);
  });

  it('a validation failure throws PayloadValidationError, a PoisonMessageError with the messages', async () => {
    const handle = app.get(HandlerFactory).forInstance(app.get(Orders), 'onWork');
    const error = await Promise.resolve(handle({ sku: 42, qty: 0 }, fakeContext())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadValidationError);
    expect(error).toBeInstanceOf(PoisonMessageError);
    expect((error as PayloadValidationError).messages).toEqual(['sku must be a string', 'qty must not be less than 1']);
  });
});

describe('@RpcHandler handlers', () => {
  it('a refusing guard turns the call into a ForbiddenException error reply', async () => {
    const sku = unique('denied');
    const error = await client.call(QUOTE, { sku, qty: 1 }, { headers: { 'x-deny': 'yes' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcRemoteError);
    expect(error).toMatchObject({ remoteName: 'ForbiddenException', remoteMessage: 'Forbidden resource' });
    expect(log).toContain('guard refused Orders.quote');
    expect(handled.filter((h) => h.order.sku === sku)).toEqual([]);
  });

  it('a ValidationPipe hands over the DTO, and refuses an invalid payload with the messages', async () => {
    const sku = unique('valid');
    await client.call(QUOTE, { sku, qty: 2 });
    expect(handled.find((h) => h.order.sku === sku)).toMatchObject({ kind: 'rpc', isDto: true });

    const error = await client.call(QUOTE, { sku: 'x', qty: 'many' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcRemoteError);
    expect(error).toMatchObject({
      remoteName: 'PayloadValidationError',
      remoteMessage: 'Payload failed validation: qty must not be less than 1; qty must be an integer number',
    });
  });

  it('an interceptor wraps the reply', async () => {
    await expect(client.call(QUOTE, { sku: 'wrapped', qty: 5 })).resolves.toEqual({
      reply: { sku: 'wrapped', total: 10, queue: QUOTE },
      interceptedBy: 'Envelope',
    });
  });

  it("an exception filter's return value is the reply, and what it throws the error reply", async () => {
    await expect(client.call(QUOTE, { sku: 'out-of-stock', qty: 1 })).resolves.toEqual({
      outOfStock: 'out-of-stock',
      queue: QUOTE,
    });
    const error = await client.call(QUOTE, { sku: 'discontinued', qty: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcRemoteError);
    expect(error).toMatchObject({
      remoteName: 'Discontinued',
      remoteMessage: 'sku discontinued is discontinued',
      code: 'GONE',
    });
  });
});

describe('providers of every kind', () => {
  it.each([
    ['useValue', BY_VALUE, 'useValue'],
    ['useFactory', BY_FACTORY, 'useFactory with injected'],
    ['useClass', BY_CLASS, 'useClass'],
  ])('a %s provider serves its handler through its enhancers', async (_kind, queue, from) => {
    await expect(client.call(queue, 7)).resolves.toEqual({ reply: { n: 7, from }, interceptedBy: 'Envelope' });
  });
});

describe('request-scoped handler providers', () => {
  it('get a new instance for every message, with the message as REQUEST', async () => {
    for (const n of [1, 2, 3]) await publisher.sendToQueue(PER_MESSAGE, { n });
    await waitUntil('three messages', () => perMessage.length === 3);
    expect(perMessage.map((m) => m.n).sort()).toEqual([1, 2, 3]);
    expect(new Set(perMessage.map((m) => m.serial)).size).toBe(3);
    expect(perMessage.every((m) => m.requestIsContext && m.dependencyRequestIsContext)).toBe(true);
    expect(timed.filter((t) => t.handler === 'PerMessage.onMessage')).toHaveLength(3);
  });

  it('answer RPCs from a fresh instance each time, through their guards', async () => {
    const first = await client.call<{ serial: number; requestIsContext: boolean }>(PER_MESSAGE_RPC, null);
    const second = await client.call<{ serial: number; requestIsContext: boolean }>(PER_MESSAGE_RPC, null);
    expect(first.requestIsContext && second.requestIsContext).toBe(true);
    expect(second.serial).not.toBe(first.serial);
    const error = await client.call(PER_MESSAGE_RPC, null, { headers: { 'x-deny': 'yes' } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ remoteName: 'ForbiddenException' });
  });

  describe('durable ones, with a ContextIdStrategy', () => {
    beforeAll(() => ContextIdFactory.apply(byTenant));
    afterAll(() => {
      (ContextIdFactory as unknown as { strategy?: unknown }).strategy = undefined;
    });

    it('share one instance per tenant, with the strategy payload as REQUEST', async () => {
      const call = (tenant: string) =>
        client.call<{ tenant: string; serial: number; count: number }>(PER_TENANT, null, {
          headers: { 'x-tenant': tenant },
        });
      const a1 = await call('a');
      const a2 = await call('a');
      const b1 = await call('b');
      expect([a1, a2, b1].map(({ tenant, count }) => [tenant, count])).toEqual([
        ['a', 1],
        ['a', 2],
        ['b', 1],
      ]);
      expect(a2.serial).toBe(a1.serial);
      expect(b1.serial).not.toBe(a1.serial);
    });
  });
});

import { Injectable, type INestApplicationContext, ParseIntPipe } from '@nestjs/common';
import {
  Ctx,
  getWarrenToken,
  Header,
  Payload,
  Publisher,
  Subscribe,
  WarrenConfigurationError,
  type WarrenContext,
  WarrenDecoratorError,
  WarrenModule,
} from 'nestjs-warren';
import { recordHandled } from 'nestjs-warren/testing';
import { Test } from '@nestjs/testing';
import { bootApp } from './support/app.js';
import { bindingsFrom, brokerUrl, deleteTopology, management, unique, waitUntil } from './support/broker.js';

// One name per thing (issue 12, item 11): `exchangeType` everywhere (`type` still accepted), a
// fanout subscription without a placeholder binding key, `connection` and `clientProvidedName` on
// the module (their older names still accepted), and `@Header()`.

const FANOUT = unique('e2e.naming.fanout');
const OLD_FANOUT = unique('e2e.naming.oldfanout');

@Injectable()
class Listeners {
  readonly seen: { handler: string; payload: unknown; tenant?: unknown; version?: unknown; all?: unknown }[] = [];

  @Subscribe(FANOUT, { exchangeType: 'fanout' })
  onEvery(payload: unknown) {
    this.seen.push({ handler: 'onEvery', payload });
  }

  // The older name of the option, kept for one release.
  @Subscribe(OLD_FANOUT, undefined, { type: 'fanout' })
  onOld(payload: unknown) {
    this.seen.push({ handler: 'onOld', payload });
  }

  @Subscribe(FANOUT, { exchangeType: 'fanout' })
  onHeaders(
    @Payload() payload: unknown,
    @Header('x-tenant') tenant: unknown,
    @Header('x-version', ParseIntPipe) version: number,
    @Header() all: Record<string, unknown>,
    @Ctx() ctx: WarrenContext,
  ) {
    this.seen.push({ handler: 'onHeaders', payload, tenant, version, all: { ...all, same: all === ctx.headers } });
  }
}

describe('naming: exchangeType, fanout without a key, connection/clientProvidedName, @Header()', () => {
  let app: INestApplicationContext | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  afterAll(async () => {
    await deleteTopology({ exchanges: [FANOUT, OLD_FANOUT] });
  });

  it('binds a fanout subscription with no binding key, takes the older `type`, and hands headers to @Header() parameters', async () => {
    app = await bootApp({ providers: [Listeners] });
    const listeners = app.get(Listeners);
    const handled = recordHandled(app);
    const publisher = app.get(Publisher);

    const bindings = await bindingsFrom(FANOUT);
    expect(bindings).toHaveLength(2);
    expect(bindings.map(([, key]) => key)).toEqual(['', '']);
    expect((await bindingsFrom(OLD_FANOUT)).map(([, key]) => key)).toEqual(['']);
    expect(await management<{ type: string }>(`/api/exchanges/%2F/${OLD_FANOUT}`)).toMatchObject({ type: 'fanout' });

    await publisher.publish(
      FANOUT,
      'ignored.by.fanout',
      { n: 1 },
      { headers: { 'x-tenant': 'acme', 'x-version': '3' } },
    );
    await publisher.publish(OLD_FANOUT, '', { n: 2 });
    await handled.waitForCount(3);

    const byHandler = Object.fromEntries(listeners.seen.map((s) => [s.handler, s]));
    expect(byHandler.onEvery).toEqual({ handler: 'onEvery', payload: { n: 1 } });
    expect(byHandler.onOld).toEqual({ handler: 'onOld', payload: { n: 2 } });
    expect(byHandler.onHeaders).toEqual({
      handler: 'onHeaders',
      payload: { n: 1 },
      tenant: 'acme',
      version: 3,
      all: expect.objectContaining({ 'x-tenant': 'acme', 'x-version': '3', same: true }),
    });
  });

  it('refuses exchangeType and type that disagree, naming both', () => {
    expect(() => {
      class Mixed {
        @Subscribe('mixed', { exchangeType: 'fanout', type: 'topic' })
        on() {}
      }
      return Mixed;
    }).toThrow(
      new WarrenDecoratorError(
        '@Subscribe() on Mixed.on: exchangeType "fanout" and type "topic" disagree; type is the older name of exchangeType: give exchangeType only',
      ),
    );
  });

  it('registers a named connection by `connection` and names its AMQP connections by `clientProvidedName`', async () => {
    const client = unique('e2e-naming-client');
    const moduleRef = await Test.createTestingModule({
      imports: [
        WarrenModule.forRoot({ url: brokerUrl(), connectTimeoutMs: 10_000 }),
        WarrenModule.forRoot({
          connection: 'audit',
          url: brokerUrl(),
          connectTimeoutMs: 10_000,
          clientProvidedName: client,
        }),
      ],
    }).compile();
    moduleRef.useLogger(['error', 'warn']);
    app = await moduleRef.init();
    expect(app.get(getWarrenToken(Publisher, 'audit'))).not.toBe(app.get(Publisher));
    let names: string[] = [];
    await waitUntil('the named connections in the management API', async () => {
      const connections = await management<{ client_properties: { connection_name?: string } }[]>('/api/connections');
      names = connections.map((c) => c.client_properties.connection_name ?? '').filter((n) => n.startsWith(client));
      return names.length === 2;
    });
    expect(names.sort()).toEqual([`${client}:consume`, `${client}:publish`]);
  });

  it('refuses a connection and a name that disagree', () => {
    expect(() => WarrenModule.forRoot({ connection: 'audit', name: 'billing', url: brokerUrl() })).toThrow(
      new WarrenConfigurationError(
        'WarrenModule.forRoot(): connection "audit" and name "billing" disagree; name is the older name of connection: give connection only',
      ),
    );
  });
});

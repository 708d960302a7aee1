import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import {
  Consume,
  Publisher,
  RpcClient,
  RpcHandler,
  Subscribe,
  type WarrenContext,
  WarrenConfigurationError,
  WarrenModule,
  type WarrenModuleOptions,
} from 'nestjs-warren';
import { recordHandled } from 'nestjs-warren/testing';
import { bindingsFrom, brokerUrl, deleteTopology, management, unique, waitUntil } from './support/broker.js';
import { logged } from './support/logs.js';

// Handlers whose exchange, queue and options come from configuration, resolved at boot: the
// per-environment names (`staging.billing`) that constant decorator arguments cannot give.

@Injectable()
class Billing {
  readonly invoices: { payload: unknown; queue: string; routingKey: string }[] = [];
  readonly jobs: unknown[] = [];

  @Subscribe({ config: 'billing' })
  onInvoice(payload: unknown, ctx: WarrenContext) {
    this.invoices.push({ payload, queue: ctx.queue, routingKey: ctx.routingKey });
  }

  // The decorator's own queue is a default that the configuration overrides.
  @Consume({ config: 'jobs', queue: 'not-this-one', prefetch: 1 })
  onJob(payload: unknown) {
    this.jobs.push(payload);
  }

  @RpcHandler({ config: 'quotes' })
  quote(payload: { amount: number }) {
    return { total: payload.amount * 2 };
  }
}

/** The app as a service would boot it: the names from ConfigService, through forRootAsync. */
async function bootConfigured(
  env: Record<string, string>,
  handlers: (config: ConfigService) => WarrenModuleOptions['handlers'],
  providers: (new (...args: never[]) => object)[] = [Billing],
): Promise<INestApplicationContext> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => env] }),
      WarrenModule.forRootAsync({
        imports: [ConfigModule],
        inject: [ConfigService],
        useFactory: (config: ConfigService) => ({
          url: brokerUrl(),
          connectTimeoutMs: 10_000,
          handlers: handlers(config),
        }),
      }),
    ],
    providers,
  }).compile();
  moduleRef.useLogger(['error', 'warn']);
  try {
    return await moduleRef.init();
  } catch (err) {
    await moduleRef.close().catch(() => undefined);
    throw err;
  }
}

/** The error a boot fails with; a boot that succeeds is closed and fails the test. */
async function bootError(boot: Promise<INestApplicationContext>): Promise<Error> {
  const err = await boot.then(
    async (booted) => {
      await booted.close();
      return undefined;
    },
    (e: Error) => e,
  );
  if (err === undefined) throw new Error('the app booted, but it should have failed');
  return err;
}

/** The three handlers' entries, every name under the environment's prefix. */
function prefixed(config: ConfigService): WarrenModuleOptions['handlers'] {
  const prefix = config.getOrThrow<string>('WARREN_PREFIX');
  return {
    billing: { exchange: `${prefix}.billing`, bindingKeys: 'invoice.*', queue: `${prefix}.invoices` },
    jobs: { queue: `${prefix}.jobs` },
    quotes: { queue: `${prefix}.quotes` },
  };
}

describe('handlers configured at boot (@Subscribe/@Consume/@RpcHandler({ config }))', () => {
  let app: INestApplicationContext | undefined;
  const prefixes: string[] = [];

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  afterAll(async () => {
    await deleteTopology({
      exchanges: prefixes.map((p) => `${p}.billing`),
      queues: prefixes.flatMap((p) => [
        `${p}.invoices`,
        `${p}.invoices.dlq`,
        `${p}.jobs`,
        `${p}.jobs.dlq`,
        `${p}.quotes`,
      ]),
    });
  });

  it('declares and consumes the names ConfigService gives, with the decorator options the configuration does not override', async () => {
    const prefix = unique('staging');
    prefixes.push(prefix);
    app = await bootConfigured({ WARREN_PREFIX: prefix }, prefixed);
    const billing = app.get(Billing);
    const handled = recordHandled(app);

    expect(await bindingsFrom(`${prefix}.billing`)).toEqual([[`${prefix}.invoices`, 'invoice.*']]);
    const publisher = app.get(Publisher);
    await publisher.publish(`${prefix}.billing`, 'invoice.created', { id: 7 });
    await publisher.sendToQueue(`${prefix}.jobs`, { job: 1 });
    const reply = await app.get(RpcClient).call(`${prefix}.quotes`, { amount: 21 });
    await handled.waitForCount(3);

    expect(billing.invoices).toEqual([
      { payload: { id: 7 }, queue: `${prefix}.invoices`, routingKey: 'invoice.created' },
    ]);
    expect(billing.jobs).toEqual([{ job: 1 }]);
    expect(reply).toEqual({ total: 42 });
    // The decorator's default queue was overridden, and nothing was declared under it.
    await expect(management(`/api/queues/%2F/not-this-one`)).rejects.toThrow(/404/);
    // Its prefetch, which the configuration does not set, applies.
    // (The management API lists consumers a moment after they start.)
    let prefetch: number | undefined;
    await waitUntil('the jobs consumer in the management API', async () => {
      const consumers = await management<{ prefetch_count: number; queue: { name: string } }[]>('/api/consumers/%2F');
      prefetch = consumers.find((c) => c.queue.name === `${prefix}.jobs`)?.prefetch_count;
      return prefetch !== undefined;
    });
    expect(prefetch).toBe(1);
  });

  it('fails the boot naming the handler and the key when the configuration has no entry for it, before declaring anything', async () => {
    const prefix = unique('staging');
    prefixes.push(prefix);
    const err = await bootError(
      bootConfigured({ WARREN_PREFIX: prefix }, (config) => {
        const { billing, quotes } = prefixed(config)!;
        return { billing, quotes };
      }),
    );
    expect(err).toBeInstanceOf(WarrenConfigurationError);
    expect(err.message).toBe(
      `@Consume({ config: 'jobs' }) on Billing.onJob: the module options of the connection "default" have no ` +
        `handlers["jobs"] (they have "billing", "quotes"); add it to WarrenModule.forRoot()/forRootAsync()'s options`,
    );
    await expect(management(`/api/exchanges/%2F/${prefix}.billing`)).rejects.toThrow(/404/);
  });

  it("checks a configured entry as the decorator's own arguments, naming the handler and the key", async () => {
    const prefix = unique('staging');
    prefixes.push(prefix);
    const badPrefetch = await bootError(
      bootConfigured({ WARREN_PREFIX: prefix }, (config) => ({
        ...prefixed(config),
        jobs: { queue: `${prefix}.jobs`, prefetch: -1 },
      })),
    );
    expect(badPrefetch.message).toMatch(/^@Consume\(\{ config: 'jobs' \}\) on Billing\.onJob: prefetch must be/);
    const noExchange = await bootError(
      bootConfigured({ WARREN_PREFIX: prefix }, (config) => ({
        ...prefixed(config),
        billing: { bindingKeys: 'invoice.*' },
      })),
    );
    expect(noExchange.message).toBe(
      `@Subscribe({ config: 'billing' }) on Billing.onInvoice: exchange must be a non-empty string, got undefined`,
    );
  });

  it('warns about an entry no handler names (a typo in a key)', async () => {
    const prefix = unique('staging');
    prefixes.push(prefix);
    app = await bootConfigured({ WARREN_PREFIX: prefix }, (config) => ({
      ...prefixed(config),
      biling: { queue: `${prefix}.typo` },
    }));
    expect(logged('warn')).toContainEqual(expect.stringContaining('handlers["biling"]'));
    await expect(management(`/api/queues/%2F/${prefix}.typo`)).rejects.toThrow(/404/);
  });
});

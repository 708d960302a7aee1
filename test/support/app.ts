import type { INestApplicationContext, ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { WarrenModule, type WarrenModuleOptions } from 'nestjs-warren';
import { brokerUrl } from './broker.js';

/** Boots a Nest app with Warren on the test broker plus the given providers and modules. */
export async function bootApp(
  metadata: ModuleMetadata,
  options: Partial<WarrenModuleOptions> = {},
): Promise<INestApplicationContext> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      WarrenModule.forRoot({ url: brokerUrl(), connectTimeoutMs: 10_000, ...options }),
      ...(metadata.imports ?? []),
    ],
    providers: metadata.providers,
    controllers: metadata.controllers,
  }).compile();
  moduleRef.useLogger(['error', 'warn']);
  // An application context is enough: Warren needs no HTTP server.
  try {
    return await moduleRef.init();
  } catch (err) {
    // A failed boot (the point of some tests) must not leave connections open behind it.
    await moduleRef.close().catch(() => undefined);
    throw err;
  }
}

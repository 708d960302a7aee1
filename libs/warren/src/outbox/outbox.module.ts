import { type DynamicModule, type InjectionToken, Module, type ModuleMetadata } from '@nestjs/common';
import { Inbox } from './inbox.js';
import { Outbox, OUTBOX_MODULE_OPTIONS, type OutboxModuleOptions } from './outbox.js';
import { outboxTables } from './outbox-schema.js';
import { OUTBOX_STATE } from './outbox-state.js';

export interface OutboxModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory: (...args: any[]) => OutboxModuleOptions | Promise<OutboxModuleOptions>;
  inject?: InjectionToken[];
}

/** `Outbox` and `Inbox` for the app (global, like WarrenModule): one database per app. */
@Module({})
export class OutboxModule {
  static forRoot(options: OutboxModuleOptions): DynamicModule {
    return OutboxModule.forRootAsync({ useFactory: () => options });
  }

  static forRootAsync(options: OutboxModuleAsyncOptions): DynamicModule {
    return {
      module: OutboxModule,
      global: true,
      imports: options.imports ?? [],
      providers: [
        { provide: OUTBOX_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        {
          provide: OUTBOX_STATE,
          useFactory: (resolved: OutboxModuleOptions) => ({
            database: resolved.database,
            tables: outboxTables(resolved.schema),
          }),
          inject: [OUTBOX_MODULE_OPTIONS],
        },
        Outbox,
        Inbox,
      ],
      exports: [Outbox, Inbox],
    };
  }
}

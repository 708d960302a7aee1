import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { WarrenConnection } from './connection/warren-connection.js';
import { WarrenConfigurationError } from './warren.errors.js';
import { WarrenModule } from './warren.module.js';
import { type WarrenModuleOptions, type WarrenOptionsFactory, WARREN_MODULE_OPTIONS } from './warren.options.js';

describe('WarrenModule.forRootAsync misused', () => {
  it('refuses options with no way to make the module options with a WarrenConfigurationError', () => {
    const register = () => WarrenModule.forRootAsync({});
    expect(register).toThrow(WarrenConfigurationError);
    expect(register).toThrow('WarrenModule.forRootAsync() needs useFactory, useClass or useExisting');
  });
});

// The options factory as a class (`useClass`: the module makes one; `useExisting`: the app's own
// provider), documented in the guide's Setup. memory:// keeps the boot in the process.
@Injectable()
class OptionsFactory implements WarrenOptionsFactory {
  static made = 0;
  constructor() {
    OptionsFactory.made++;
  }
  async createWarrenOptions(): Promise<WarrenModuleOptions> {
    return { url: 'memory://options-factory', prefetch: 3 };
  }
}

@Module({ providers: [OptionsFactory], exports: [OptionsFactory] })
class OptionsFactoryModule {}

describe('WarrenModule.forRootAsync with an options factory class', () => {
  beforeEach(() => (OptionsFactory.made = 0));

  it.each([
    ['useClass', () => WarrenModule.forRootAsync({ useClass: OptionsFactory })],
    ['useExisting', () => WarrenModule.forRootAsync({ imports: [OptionsFactoryModule], useExisting: OptionsFactory })],
  ])('%s: boots with what createWarrenOptions() returns', async (_, register) => {
    const moduleRef = await Test.createTestingModule({ imports: [register()] }).compile();
    moduleRef.useLogger(['error']);
    const app = await moduleRef.init();
    try {
      expect(app.get<WarrenModuleOptions>(WARREN_MODULE_OPTIONS)).toMatchObject({
        url: 'memory://options-factory',
        prefetch: 3,
      });
      expect(app.get(WarrenConnection).isConnected()).toBe(true);
      expect(OptionsFactory.made).toBe(1);
    } finally {
      await app.close();
    }
  });
});

import { WarrenConfigurationError } from './warren.errors.js';
import { WarrenModule } from './warren.module.js';

describe('WarrenModule.forRootAsync misused', () => {
  it('refuses options with no way to make the module options with a WarrenConfigurationError', () => {
    const register = () => WarrenModule.forRootAsync({});
    expect(register).toThrow(WarrenConfigurationError);
    expect(register).toThrow('WarrenModule.forRootAsync() needs useFactory, useClass or useExisting');
  });
});

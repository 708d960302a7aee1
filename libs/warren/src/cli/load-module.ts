import type { DynamicModule, Type } from '@nestjs/common';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CliError } from './args.js';

/** What `@Module()` records on a class (an empty `@Module({})` records nothing). */
const MODULE_KEYS = ['imports', 'providers', 'controllers', 'exports'];

function isModuleClass(value: unknown): value is Type {
  return typeof value === 'function' && MODULE_KEYS.some((key) => Reflect.hasOwnMetadata(key, value));
}

function isDynamicModule(value: unknown): value is DynamicModule {
  return typeof value === 'object' && value !== null && typeof (value as { module?: unknown }).module === 'function';
}

/**
 * The Nest module a file exports: the export named by `exportName`, else its default export,
 * else its one exported module. A module class, a DynamicModule (`AppModule.forRoot({...})`), or
 * a function returning one of these (called, and awaited).
 */
export async function loadModule(file: string, exportName?: string): Promise<Type | DynamicModule> {
  const path = resolve(file);
  if (!existsSync(path)) throw new CliError(`${file}: no such file`);
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'ERR_UNKNOWN_FILE_EXTENSION') {
      throw new CliError(
        `${file}: Node cannot load this file as it is; give the compiled JavaScript (e.g. dist/app.module.js), or run the CLI with a TypeScript loader`,
      );
    }
    throw new CliError(`${file} could not be loaded: ${e.message}`);
  }
  // A CommonJS file's module.exports is the default export: its properties are its exports.
  const exports: Record<string, unknown> = { ...namespace };
  const def = namespace.default;
  if (def && typeof def === 'object' && !isDynamicModule(def)) {
    delete exports.default;
    Object.assign(exports, def);
  }
  if (exportName !== undefined) {
    if (!(exportName in exports)) {
      throw new CliError(`${file} has no export "${exportName}"; it exports ${describeNames(Object.keys(exports))}`);
    }
    return asModule(exports[exportName], `${file}: export "${exportName}"`, true);
  }
  if (exports.default !== undefined) return asModule(exports.default, `${file}: the default export`, true);
  const modules = Object.entries(exports).filter(([, v]) => isModuleClass(v) || isDynamicModule(v));
  if (modules.length === 1) return modules[0][1] as Type | DynamicModule;
  if (modules.length > 1) {
    throw new CliError(
      `${file} exports several modules (${modules.map(([k]) => k).join(', ')}): choose one with --export <name>`,
    );
  }
  throw new CliError(
    `${file} exports no Nest module (a @Module() class, or a DynamicModule such as AppModule.forRoot({...})); ` +
      `it exports ${describeNames(Object.keys(exports))}`,
  );
}

async function asModule(value: unknown, what: string, callable: boolean): Promise<Type | DynamicModule> {
  if (isModuleClass(value) || isDynamicModule(value)) return value;
  // A class with an empty @Module({}) carries no metadata: it is taken as given.
  if (typeof value === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(value))) return value as Type;
  if (callable && typeof value === 'function') {
    const made = await (value as () => unknown)();
    return asModule(made, `${what} (called)`, false);
  }
  throw new CliError(
    `${what} is not a Nest module (a @Module() class, or a DynamicModule such as AppModule.forRoot({...})), got ${describe(value)}`,
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

function describeNames(names: string[]): string {
  return names.length === 0 ? 'nothing' : names.join(', ');
}

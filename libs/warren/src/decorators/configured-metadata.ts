import { type ConfiguredHandlerMetadata, decoratorWho, type HandlerKind } from './handler-metadata.js';
import { requireName } from './option-guards.js';

/** The decorators' own argument: a key of the module options' `handlers`, and defaults under it. */
export interface ConfiguredSource {
  /** The key of the module options' `handlers` entry that names this handler's exchange, queue and options. */
  config: string;
}

export function isConfiguredSource(value: unknown): value is ConfiguredSource {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && 'config' in value;
}

/**
 * Records a configured handler: only the key is checked now; the names and options are checked at
 * boot, once the configuration's entry is known (see configured-handler.ts). `decorator` and
 * `where` name the culprit of a bad key: `@Consume() on Worker.run`.
 */
export function configuredMetadata(
  kind: HandlerKind,
  decorator: string,
  where: string,
  source: ConfiguredSource,
): ConfiguredHandlerMetadata {
  const who = decoratorWho(decorator, where);
  const { config, connection, ...defaults } = source as ConfiguredSource & Record<string, unknown>;
  return {
    kind,
    config: requireName(who, 'config', config),
    defaults,
    connection: connection === undefined ? undefined : requireName(who, 'connection', connection),
  };
}

import type { StandardSchemaV1 } from '../validation/standard-schema.js';

/** A JSON Schema (draft-07, which AsyncAPI's default schema format extends). */
export type JsonSchema = Record<string, unknown>;

/** What a Standard Schema validator may offer besides validating: one of these gives its JSON Schema. */
interface JsonSchemaSources {
  /** Standard JSON Schema (standardschema.dev/json-schema): zod ≥ 4.2, arktype, valibot's adapter. */
  '~standard'?: { jsonSchema?: { input?: (options: { target: string }) => unknown } };
  /** zod 4's method. */
  toJSONSchema?: () => unknown;
  /** arktype's method. */
  toJsonSchema?: () => unknown;
}

/**
 * The JSON Schema of the payloads `schema` accepts, when the validator can say (see
 * JsonSchemaSources); undefined when it cannot (a schema with transforms it cannot express, a
 * library without any of these). A class-validator DTO is not a Standard Schema and gives none.
 */
export function jsonSchemaOf(schema: StandardSchemaV1 | undefined): JsonSchema | undefined {
  if (!schema) return undefined;
  const sources = schema as unknown as JsonSchemaSources;
  const attempts: (() => unknown)[] = [
    () => sources['~standard']?.jsonSchema?.input?.({ target: 'draft-07' }),
    () => sources.toJSONSchema?.(),
    () => sources.toJsonSchema?.(),
  ];
  for (const attempt of attempts) {
    let result: unknown;
    try {
      result = attempt();
    } catch {
      // The validator cannot express this schema in JSON Schema: try the next way, or give none.
      continue;
    }
    if (result && typeof result === 'object' && !Array.isArray(result)) {
      // The document says which format its schemas are in; a `$schema` inside would contradict it.
      const { $schema: _, ...rest } = result as JsonSchema;
      return rest;
    }
  }
  return undefined;
}

import type { StandardSchemaV1 } from '../validation/standard-schema.js';
import { jsonSchemaOf } from './json-schema.js';

/** A Standard Schema validator with whatever extra members a test gives it. */
function validator(extra: Record<string, unknown> = {}, standard: Record<string, unknown> = {}): StandardSchemaV1 {
  return {
    '~standard': { version: 1, vendor: 'hand', validate: (value: unknown) => ({ value }), ...standard },
    ...extra,
  } as StandardSchemaV1;
}

describe('jsonSchemaOf', () => {
  it("takes Standard JSON Schema's input schema in draft-07, without its $schema", () => {
    const targets: string[] = [];
    const schema = validator(
      {},
      {
        jsonSchema: {
          input: ({ target }: { target: string }) => {
            targets.push(target);
            return { $schema: 'http://json-schema.org/draft-07/schema#', type: 'integer' };
          },
        },
      },
    );
    expect(jsonSchemaOf(schema)).toEqual({ type: 'integer' });
    expect(targets).toEqual(['draft-07']);
  });

  it("falls back on zod's toJSONSchema() and arktype's toJsonSchema()", () => {
    expect(jsonSchemaOf(validator({ toJSONSchema: () => ({ type: 'string' }) }))).toEqual({ type: 'string' });
    expect(jsonSchemaOf(validator({ toJsonSchema: () => ({ type: 'boolean' }) }))).toEqual({ type: 'boolean' });
  });

  it('gives none for a validator that cannot express its schema, or offers no way to', () => {
    const throwing = validator(
      {
        toJSONSchema: () => {
          throw new Error('transforms cannot be represented');
        },
      },
      {
        jsonSchema: {
          input: () => {
            throw new Error('transforms cannot be represented');
          },
        },
      },
    );
    expect(jsonSchemaOf(throwing)).toBeUndefined();
    expect(jsonSchemaOf(validator())).toBeUndefined();
    expect(jsonSchemaOf(undefined)).toBeUndefined();
  });
});

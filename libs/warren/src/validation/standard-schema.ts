/**
 * The Standard Schema interface (standardschema.dev), implemented by zod, valibot, arktype and
 * others: Warren validates contract payloads through it without depending on any of them.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output };
  };
}

export type StandardResult<Output> =
  { readonly value: Output; readonly issues?: undefined } | { readonly issues: readonly StandardIssue[] };

export interface StandardIssue {
  readonly message: string;
  readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[];
}

/** Validates `value`; resolves with the (possibly transformed) value, or rejects with readable issues. */
export async function validateWithSchema(
  schema: StandardSchemaV1,
  value: unknown,
): Promise<{ value: unknown } | { issues: string[] }> {
  const result = await schema['~standard'].validate(value);
  if (result.issues) return { issues: result.issues.map(describeIssue) };
  return { value: result.value };
}

function describeIssue(issue: StandardIssue): string {
  const path = (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}

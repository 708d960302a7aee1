/**
 * Where `headers` holds a value AMQP's field tables cannot carry, as `path: why`, or null.
 * amqplib finds out only while writing the frame, inside its publishing loop, where the error
 * is lost and the publish never settles: Warren checks before anything is queued.
 */
export function headersProblem(headers: unknown, path = 'headers'): string | null {
  if (headers === undefined || headers === null) return null;
  if (typeof headers !== 'object' || Array.isArray(headers) || Buffer.isBuffer(headers) || headers instanceof Date) {
    return `${path} must be an object`;
  }
  for (const [key, value] of Object.entries(headers)) {
    const problem = valueProblem(value, `${path}.${key}`);
    if (problem) return problem;
  }
  return null;
}

function valueProblem(value: unknown, path: string): string | null {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return null;
    case 'number':
      return Number.isNaN(value) ? `${path} is NaN, which AMQP cannot encode` : null;
    case 'object':
      if (value === null || Buffer.isBuffer(value) || value instanceof Date) return null;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const problem = valueProblem(value[i], `${path}[${i}]`);
          if (problem) return problem;
        }
        return null;
      }
      return headersProblem(value, path);
    default:
      return `${path} is a ${typeof value}, which AMQP headers cannot carry`;
  }
}

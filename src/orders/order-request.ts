/** The body of `POST /order`, once checked. */
export interface OrderRequest {
  customer_name: string;
  products_ids: number[];
}

export const MAX_CUSTOMER_NAME_LENGTH = 200;
export const MAX_PRODUCTS_PER_ORDER = 100;

const FIELDS = new Set(['customer_name', 'products_ids']);

/**
 * Checks a request body by hand and lists every problem, so a client fixes its request in one go.
 * Unknown fields are refused too: `product_ids` for `products_ids` would otherwise read as an
 * order without products.
 */
export function parseOrderRequest(
  contentType: string | undefined,
  body: unknown,
): { order: OrderRequest } | { problems: string[] } {
  // A form post would otherwise be parsed as fields and refused for a missing products_ids.
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType ?? '') || body === undefined) {
    return {
      problems: [`the body must be JSON, sent with content-type application/json (got ${contentType ?? 'none'})`],
    };
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { problems: [`the body must be a JSON object, got ${kind(body)}`] };
  }
  const fields = body as Record<string, unknown>;
  const problems: string[] = [];

  const name = fields.customer_name;
  if (name === undefined) problems.push('customer_name is required');
  else if (typeof name !== 'string') problems.push(`customer_name must be a string, got ${kind(name)}`);
  else if (name.trim() === '') problems.push('customer_name must not be empty');
  else if (name.length > MAX_CUSTOMER_NAME_LENGTH)
    problems.push(`customer_name must be at most ${MAX_CUSTOMER_NAME_LENGTH} characters, got ${name.length}`);

  const ids = fields.products_ids;
  if (ids === undefined) problems.push('products_ids is required');
  else if (!Array.isArray(ids)) problems.push(`products_ids must be an array of product ids, got ${kind(ids)}`);
  else if (ids.length === 0) problems.push('products_ids must not be empty');
  else if (ids.length > MAX_PRODUCTS_PER_ORDER)
    problems.push(`products_ids must have at most ${MAX_PRODUCTS_PER_ORDER} entries, got ${ids.length}`);
  else {
    ids.forEach((id, i) => {
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) {
        problems.push(`products_ids[${i}] must be a positive integer, got ${shown(id)}`);
      }
    });
  }

  for (const key of Object.keys(fields)) if (!FIELDS.has(key)) problems.push(`unknown field "${key}"`);

  if (problems.length > 0) return { problems };
  return { order: { customer_name: (name as string).trim(), products_ids: ids as number[] } };
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${shown(value)}`;
}

/** A value as JSON, cut short: the reason must name it, not echo a megabyte back. */
function shown(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 40 ? `${json.slice(0, 37)}...` : json;
}

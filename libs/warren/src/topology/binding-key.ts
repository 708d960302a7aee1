import { type ExchangeType, MAX_SHORT_STRING_BYTES } from './amqp-rules.js';

/** Why `key` cannot be a binding key on an exchange of `type`, or null when it can. */
export function bindingKeyProblem(type: ExchangeType, key: string): string | null {
  if (typeof key !== 'string') return `binding key must be a string, got ${typeof key}`;
  const bytes = Buffer.byteLength(key);
  if (bytes > MAX_SHORT_STRING_BYTES) {
    return `binding key is ${bytes} bytes, over RabbitMQ's limit of ${MAX_SHORT_STRING_BYTES}`;
  }
  if (type !== 'topic') return null;
  for (const word of key.split('.')) {
    // RabbitMQ would take `a*` as a literal word; that is never what the author meant.
    if (word !== '*' && word !== '#' && /[*#]/.test(word)) {
      return `"${word}" mixes a wildcard with other characters; "*" and "#" must be whole words between dots`;
    }
  }
  return null;
}

/** Why `key` cannot be a routing key on publish, or null when it can. */
export function routingKeyProblem(key: string): string | null {
  if (typeof key !== 'string') return `routing key must be a string, got ${typeof key}`;
  const bytes = Buffer.byteLength(key);
  if (bytes > MAX_SHORT_STRING_BYTES) {
    return `routing key is ${bytes} bytes, over RabbitMQ's limit of ${MAX_SHORT_STRING_BYTES}`;
  }
  return null;
}

/**
 * RabbitMQ's topic matching: `*` is exactly one word, `#` zero or more. Used by tests and by the
 * in-memory broker; the real routing is always the broker's.
 */
export function topicMatches(bindingKey: string, routingKey: string): boolean {
  // RabbitMQ splits an empty key into no words at all (not one empty word): `*` does not match "".
  const pattern = bindingKey === '' ? [] : bindingKey.split('.');
  const words = routingKey === '' ? [] : routingKey.split('.');
  // Memo of (pattern index, word index) pairs already known not to match: keeps `#.#.#` linear.
  const failed = new Set<number>();
  const width = words.length + 1;
  const match = (p: number, w: number): boolean => {
    if (failed.has(p * width + w)) return false;
    let ok: boolean;
    if (p === pattern.length) ok = w === words.length;
    else if (pattern[p] === '#') ok = match(p + 1, w) || (w < words.length && match(p, w + 1));
    else if (w === words.length) ok = false;
    else ok = (pattern[p] === '*' || pattern[p] === words[w]) && match(p + 1, w + 1);
    if (!ok) failed.add(p * width + w);
    return ok;
  };
  return match(0, 0);
}

import { isDeepStrictEqual } from 'node:util';
import type { ExchangeType } from './amqp-rules.js';

/** One binding of a queue, as far as routing is concerned. */
export interface RoutingBinding {
  routingKey: string;
  arguments: Record<string, unknown>;
}

/**
 * A message both bindings (on one exchange of `type`) would route, described for an error
 * (`routing key "order.placed"`, `headers {"format":"pdf"}`), or null when no message can match
 * both. Exact, not a heuristic: a service queue refuses two handlers for one message at boot, and
 * a false alarm would refuse a sound app.
 */
export function overlapExample(type: ExchangeType, a: RoutingBinding, b: RoutingBinding): string | null {
  switch (type) {
    case 'direct':
      return a.routingKey === b.routingKey ? `routing key ${JSON.stringify(a.routingKey)}` : null;
    case 'topic': {
      const key = topicOverlap(a.routingKey, b.routingKey);
      return key === null ? null : `routing key ${JSON.stringify(key)}`;
    }
    case 'fanout':
      return 'every message';
    case 'headers': {
      const headers = headersOverlap(a.arguments, b.arguments);
      return headers === null ? null : `headers ${JSON.stringify(headers)}`;
    }
  }
}

/** The word a `*` or `#` stands for in an example key. */
const ANY_WORD = 'x';

/**
 * A routing key both topic patterns match, or null when there is none. The two patterns are
 * walked together, one routing-key word at a time (the product of their automata): a state is a
 * position in each; `#` may be skipped without a word or absorb one and stay; `*` takes any word;
 * a literal takes itself, so two different literals at once are a dead end. A breadth-first
 * search finds the shortest common key if any exists, and keeps the way to it for the example.
 */
export function topicOverlap(a: string, b: string): string | null {
  // As RabbitMQ splits them: an empty key has no words at all (see topicMatches).
  const p = a === '' ? [] : a.split('.');
  const q = b === '' ? [] : b.split('.');
  const width = q.length + 1;
  const goal = p.length * width + q.length;
  // For each state reached: the state it was reached from and the word taken (null: a `#` skipped).
  const from = new Map<number, [number, string | null]>([[0, [-1, null]]]);
  const queue = [0];
  const visit = (state: number, prev: number, word: string | null) => {
    if (from.has(state)) return;
    from.set(state, [prev, word]);
    // Skips take no word: they go first so that the search stays shortest-first in words.
    if (word === null) queue.unshift(state);
    else queue.push(state);
  };
  while (queue.length > 0) {
    const state = queue.shift()!;
    if (state === goal) return exampleKey(from, goal);
    const i = Math.floor(state / width);
    const j = state % width;
    if (p[i] === '#') visit((i + 1) * width + j, state, null);
    if (q[j] === '#') visit(i * width + j + 1, state, null);
    if (i === p.length || j === q.length) continue;
    const word = commonWord(p[i], q[j]);
    if (word === null) continue;
    const ni = p[i] === '#' ? i : i + 1;
    const nj = q[j] === '#' ? j : j + 1;
    // Both staying on a `#`: a loop that never leads anywhere new.
    if (ni === i && nj === j) continue;
    visit(ni * width + nj, state, word);
  }
  return null;
}

function commonWord(x: string, y: string): string | null {
  const xWild = x === '*' || x === '#';
  const yWild = y === '*' || y === '#';
  if (xWild && yWild) return ANY_WORD;
  if (xWild) return y;
  if (yWild) return x;
  return x === y ? x : null;
}

function exampleKey(from: Map<number, [number, string | null]>, goal: number): string {
  const words: string[] = [];
  for (let state = goal; state !== 0;) {
    const [prev, word] = from.get(state)!;
    if (word !== null) words.push(word);
    state = prev;
  }
  return words.reverse().join('.');
}

/**
 * Headers both bindings of a headers exchange match, or null when no message can carry them.
 * Each binding asks for all or any of its pairs (a null value: the header is present, any value);
 * two pairs clash only when they name the same header with two different values.
 */
export function headersOverlap(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> | null {
  const left = requirement(a);
  const right = requirement(b);
  // The pairs a message must carry for each side: all of them, or one chosen pair.
  for (const l of left.any ? left.pairs.map((pair) => [pair]) : [left.pairs]) {
    for (const r of right.any ? right.pairs.map((pair) => [pair]) : [right.pairs]) {
      const merged = mergePairs([...l, ...r]);
      if (merged) return merged;
    }
  }
  return null;
}

function requirement(args: Record<string, unknown>): { any: boolean; pairs: [string, unknown][] } {
  const mode = typeof args['x-match'] === 'string' ? args['x-match'] : 'all';
  const withX = mode.endsWith('-with-x');
  const pairs = Object.entries(args).filter(([key]) => key !== 'x-match' && (withX || !key.startsWith('x-')));
  return { any: mode.startsWith('any'), pairs };
}

/** One set of headers carrying every pair, or null when two pairs clash. */
function mergePairs(pairs: [string, unknown][]): Record<string, unknown> | null {
  const out: Record<string, unknown> = {};
  // Headers only asked to be present: any value will do until a pair asks for one.
  const open = new Set<string>();
  for (const [key, value] of pairs) {
    if (value === null) {
      if (!Object.hasOwn(out, key)) {
        out[key] = ANY_WORD;
        open.add(key);
      }
      continue;
    }
    if (Object.hasOwn(out, key) && !open.has(key) && !isDeepStrictEqual(out[key], value)) return null;
    out[key] = value;
    open.delete(key);
  }
  return out;
}

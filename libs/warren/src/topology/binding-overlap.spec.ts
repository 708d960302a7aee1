import { headersOverlap, overlapExample, topicOverlap } from './binding-overlap.js';
import { topicMatches } from './binding-key.js';
import { headersMatch } from './headers-match.js';

/** Every sequence of `length` items of `alphabet`. */
function* sequences<T>(alphabet: readonly T[], length: number): Generator<T[]> {
  if (length === 0) {
    yield [];
    return;
  }
  for (const rest of sequences(alphabet, length - 1)) for (const x of alphabet) yield [...rest, x];
}

function* upTo<T>(alphabet: readonly T[], max: number): Generator<T[]> {
  for (let n = 0; n <= max; n++) yield* sequences(alphabet, n);
}

/** A small seeded generator, so a failure reproduces. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Whether some routing key matches both, by brute force: a shortest common key never needs more
 * words than the two patterns have together (each word advances at least one of them past a word
 * of its own, or both sit on `#`, which a shortest key never needs), and a word neither pattern
 * names stands for every other.
 */
function bruteOverlap(a: string, b: string): boolean {
  const words = [...new Set([...a.split('.'), ...b.split('.'), 'other'])].filter((w) => w !== '*' && w !== '#');
  const max = (a === '' ? 0 : a.split('.').length) + (b === '' ? 0 : b.split('.').length);
  for (const key of upTo(words, max)) {
    const routingKey = key.join('.');
    if (topicMatches(a, routingKey) && topicMatches(b, routingKey)) return true;
  }
  return false;
}

describe('topicOverlap', () => {
  it.each([
    ['order.*', 'order.placed', 'order.placed'],
    ['#', 'a.b', 'a.b'],
    ['order.#', '*.placed', 'order.placed'],
    ['a.#.z', 'a.*', 'a.z'],
    ['*.*', '#', 'x.x'],
    ['', '#', ''],
    ['order.placed', 'order.cancelled', null],
    ['*', '*.*', null],
    ['a.#', 'b.#', null],
    ['', '*', null],
    ['a.*.c', 'a.b.d', null],
  ])('%s and %s: %s', (a, b, example) => {
    expect(topicOverlap(a, b)).toBe(example);
    expect(topicOverlap(b, a) === null).toBe(example === null);
  });

  it('agrees with topicMatches on every pair of patterns of up to three words of a, *, #', () => {
    const patterns = [...upTo(['a', '*', '#'], 3)].map((w) => w.join('.'));
    let overlapping = 0;
    for (const a of patterns) {
      for (const b of patterns) {
        const example = topicOverlap(a, b);
        if (example !== null) {
          overlapping++;
          // The example is a real witness...
          expect([a, b, topicMatches(a, example), topicMatches(b, example)]).toEqual([a, b, true, true]);
        } else {
          // ... and "none" means none.
          expect([a, b, bruteOverlap(a, b)]).toEqual([a, b, false]);
        }
      }
    }
    // Both answers occur: the test cannot pass by always saying the same thing.
    expect(overlapping).toBeGreaterThan(0);
    expect(overlapping).toBeLessThan(patterns.length ** 2);
  });

  it('agrees with topicMatches on random patterns of up to four words of a, b, *, #', () => {
    const next = random(15);
    const word = () => ['a', 'b', '*', '#'][Math.floor(next() * 4)];
    const pattern = () => Array.from({ length: Math.floor(next() * 5) }, word).join('.');
    for (let n = 0; n < 300; n++) {
      const a = pattern();
      const b = pattern();
      const example = topicOverlap(a, b);
      if (example === null) expect([a, b, bruteOverlap(a, b)]).toEqual([a, b, false]);
      else expect([a, b, topicMatches(a, example) && topicMatches(b, example)]).toEqual([a, b, true]);
    }
  });
});

describe('headersOverlap', () => {
  it.each([
    [{ format: 'pdf' }, { format: 'pdf', 'x-match': 'all' }, { format: 'pdf' }],
    [{ format: 'pdf' }, { size: 'a4' }, { format: 'pdf', size: 'a4' }],
    [{ format: 'pdf' }, { format: 'zip' }, null],
    [{ format: 'pdf', 'x-match': 'any' }, { format: 'zip', 'x-match': 'any' }, null],
    [
      { format: 'pdf', size: 'a4', 'x-match': 'any' },
      { format: 'zip', 'x-match': 'all' },
      { size: 'a4', format: 'zip' },
    ],
    [{ format: null }, { format: 'zip' }, { format: 'zip' }],
    [{ 'x-match': 'any' }, {}, null],
    [{}, { format: 'zip' }, { format: 'zip' }],
  ])('%j and %j: %j', (a, b, example) => {
    expect(headersOverlap(a, b)).toEqual(example);
  });

  it('agrees with headersMatch on every pair of small bindings', () => {
    const values = [undefined, null, 1, 2] as const;
    const bindings: Record<string, unknown>[] = [];
    for (const mode of ['all', 'any']) {
      for (const [h, k] of sequences(values, 2)) {
        const args: Record<string, unknown> = { 'x-match': mode };
        if (h !== undefined) args.h = h;
        if (k !== undefined) args.k = k;
        bindings.push(args);
      }
    }
    // Every message over the headers h and k with values 1, 2, 3 (3: a value no binding names).
    const messages: Record<string, unknown>[] = [];
    for (const [h, k] of sequences([undefined, 1, 2, 3], 2)) {
      messages.push({ ...(h === undefined ? {} : { h }), ...(k === undefined ? {} : { k }) });
    }
    let overlapping = 0;
    for (const a of bindings) {
      for (const b of bindings) {
        const example = headersOverlap(a, b);
        if (example) {
          overlapping++;
          expect([a, b, headersMatch(a, example), headersMatch(b, example)]).toEqual([a, b, true, true]);
        } else {
          expect([a, b, messages.some((m) => headersMatch(a, m) && headersMatch(b, m))]).toEqual([a, b, false]);
        }
      }
    }
    expect(overlapping).toBeGreaterThan(0);
    expect(overlapping).toBeLessThan(bindings.length ** 2);
  });
});

describe('overlapExample', () => {
  it('describes the message both bindings route, per exchange type', () => {
    const binding = (routingKey: string, args: Record<string, unknown> = {}) => ({ routingKey, arguments: args });
    expect(overlapExample('direct', binding('a'), binding('a'))).toBe('routing key "a"');
    expect(overlapExample('direct', binding('a'), binding('b'))).toBeNull();
    expect(overlapExample('topic', binding('order.*'), binding('#.placed'))).toBe('routing key "order.placed"');
    expect(overlapExample('fanout', binding(''), binding(''))).toBe('every message');
    expect(overlapExample('headers', binding('', { a: 1 }), binding('', { a: 2 }))).toBeNull();
  });
});

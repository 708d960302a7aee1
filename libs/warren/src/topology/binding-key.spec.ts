import { bindingKeyProblem, routingKeyProblem, topicMatches } from './binding-key.js';

describe('topicMatches', () => {
  it.each([
    ['*.orange.*', 'quick.orange.rabbit', true],
    ['*.orange.*', 'quick.orange.new.rabbit', false],
    ['*.orange.*', 'orange', false],
    ['*.*.rabbit', 'lazy.pink.rabbit', true],
    ['lazy.#', 'lazy', true],
    ['lazy.#', 'lazy.orange.new.rabbit', true],
    ['lazy.#', 'lazyx.orange', false],
    ['#', '', true],
    ['#', 'a.b.c', true],
    ['#.#', 'a', true],
    ['a.#.z', 'a.z', true],
    ['a.#.z', 'a.b.c.z', true],
    ['a.#.z', 'a.b.c', false],
    ['*', '', false],
    ['.#', '', false],
    ['#.', '', false],
    ['', '', true],
    ['', 'a', false],
    ['*', '.', false],
    ['*.*', '.', true],
    ['*', 'a.b', false],
    ['a.*.#', 'a', false],
    ['a.*.#', 'a.b', true],
  ])('%s against %s: %s', (pattern, key, expected) => {
    expect(topicMatches(pattern, key)).toBe(expected);
  });

  it('stays fast on patterns made of many #', () => {
    const pattern = Array.from({ length: 40 }, () => '#').join('.') + '.x';
    expect(topicMatches(pattern, Array.from({ length: 60 }, () => 'a').join('.'))).toBe(false);
  });
});

describe('bindingKeyProblem', () => {
  it('accepts the tutorial keys', () => {
    for (const key of ['*.orange.*', '*.*.rabbit', 'lazy.#', '#', 'kern.critical', '']) {
      expect(bindingKeyProblem('topic', key)).toBeNull();
    }
  });

  it('refuses a wildcard inside a word on topic exchanges only', () => {
    expect(bindingKeyProblem('topic', 'orders.*x')).toMatch(/"\*x" mixes a wildcard/);
    expect(bindingKeyProblem('topic', 'a.b#')).toMatch(/"b#" mixes a wildcard/);
    expect(bindingKeyProblem('direct', 'orders.*x')).toBeNull();
  });

  it('refuses keys over 255 bytes, counting UTF-8 bytes', () => {
    expect(bindingKeyProblem('direct', 'a'.repeat(255))).toBeNull();
    expect(bindingKeyProblem('direct', 'é'.repeat(128))).toMatch(/256 bytes, over RabbitMQ's limit of 255/);
    expect(routingKeyProblem('x'.repeat(300))).toMatch(/300 bytes/);
  });
});

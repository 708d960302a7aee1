import { stableJson } from './stable-json.js';

describe('stableJson', () => {
  it('does not depend on the order keys were written in, at any depth', () => {
    expect(stableJson({ b: 1, a: { d: [{ y: 1, x: 2 }], c: null } })).toBe(
      stableJson({ a: { c: null, d: [{ x: 2, y: 1 }] }, b: 1 }),
    );
    expect(stableJson({ b: 1, a: 'x' })).toBe('{"a":"x","b":1}');
  });

  it("keeps array order, and shows undefined and a Buffer's content, which JSON cannot", () => {
    expect(stableJson([2, 1])).not.toBe(stableJson([1, 2]));
    expect(stableJson(undefined)).toBe('undefined');
    expect(stableJson(Buffer.from('hi'))).toBe('Buffer("aGk=")');
    expect(stableJson(Buffer.from('hi'))).not.toBe(stableJson(Buffer.from('ho')));
    expect(stableJson(Buffer.from('hi'))).not.toBe(stableJson({ 0: 104, 1: 105 }));
  });
});

import { levelName, undeliverableName } from '../../../libs/warren/src/topology/delay-ladder.js';
import { ladderNamePrefix, randomDelays, seededRandom } from './delays.js';

describe('the delayed scenario’s delays', () => {
  it('are the same for the same seed, and differ for another', () => {
    expect(randomDelays(50, 60, 7)).toEqual(randomDelays(50, 60, 7));
    expect(randomDelays(50, 60, 7)).not.toEqual(randomDelays(50, 60, 8));
  });

  it('cover 0 to max inclusive in whole seconds, and nothing outside', () => {
    const delays = randomDelays(10_000, 60, 1);
    expect(Math.min(...delays)).toBe(0);
    expect(Math.max(...delays)).toBe(60);
    const counts = new Map<number, number>();
    for (const d of delays) counts.set(d, (counts.get(d) ?? 0) + 1);
    expect(counts.size).toBe(61);
  });

  it('draws from [0, 1)', () => {
    const random = seededRandom(123);
    for (let i = 0; i < 1000; i++) {
      const v = random();
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(1);
    }
  });

  it('name the ladder of a unit as the library does (the clean-up deletes by this prefix)', () => {
    for (const unitMs of [1000, 100, 10]) {
      expect(levelName(unitMs, 0).startsWith(ladderNamePrefix(unitMs))).toBe(true);
      expect(undeliverableName(unitMs).startsWith(ladderNamePrefix(unitMs))).toBe(true);
    }
  });
});

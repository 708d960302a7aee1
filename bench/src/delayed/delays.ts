// The delayed-delivery scenario's delays: whole seconds from 0 to `max`, drawn from a seeded
// generator so that every run (and every machine) asks for the same delays.

/** A small linear congruential generator (Numerical Recipes' constants): the same seed, the same sequence. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** `n` delays in whole seconds, each from 0 to `max` inclusive. */
export function randomDelays(n: number, max: number, seed: number): Uint32Array {
  const random = seededRandom(seed);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * (max + 1));
  return out;
}

/**
 * The names every ladder of this unit starts with (nestjs-warren's topology/delay-ladder.ts). The
 * default unit's prefix takes in the scaled ladders too: the scenario deletes by it only on the
 * private broker it started.
 */
export function ladderNamePrefix(unitMs: number): string {
  return unitMs === 1000 ? 'warren.delay.' : `warren.delay.${unitMs}ms.`;
}

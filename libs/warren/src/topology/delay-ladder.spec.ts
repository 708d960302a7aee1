import { WarrenConfigurationError } from '../warren.errors.js';
import {
  DELAY_HEADERS,
  delayLadderShape,
  delayLadderTopology,
  delayRoute,
  deliveryBinding,
  isDelayLadderExchange,
  levelHeader,
  levelName,
} from './delay-ladder.js';
import { headersMatch } from './headers-match.js';

const SHAPE = { unitMs: 1000, levels: 28 };

/** The levels a message waits in, top first, by walking the ladder's declarations as the broker would route it. */
function walk(headers: Record<string, unknown>, entry: string, shape = SHAPE): { waited: string[]; end: string } {
  const { exchanges, bindings, queues } = delayLadderTopology(shape);
  const waited: string[] = [];
  let at: string | undefined = entry;
  for (let hops = 0; at && hops < 100; hops++) {
    const bound = bindings.find((b) => b.exchange === at && headersMatch(b.arguments, headers));
    if (bound) {
      waited.push(bound.queue);
      at = queues.find((q) => q.name === bound.queue)!.arguments['x-dead-letter-exchange'] as string;
      continue;
    }
    const alternate = exchanges.find((e) => e.name === at)?.arguments['alternate-exchange'];
    if (typeof alternate !== 'string' || at.endsWith('.deliver')) return { waited, end: at };
    at = alternate;
  }
  throw new Error(`no end from ${entry}`);
}

describe('delay ladder', () => {
  it('holds a delay in the levels of its set bits, rounded up to whole seconds, and ends at the deliver exchange', () => {
    for (const [delay, levels] of [
      [1000, [0]],
      [1, [0]],
      [1001, [1]],
      [7000, [2, 1, 0]],
      [60_000, [5, 4, 3, 2]],
      [3_600_000, [11, 10, 9, 4]],
      [30 * 24 * 3_600_000, [21, 18, 17, 16, 15, 11, 10, 8]],
    ] as const) {
      const route = delayRoute(delay, { exchange: 'orders' }, SHAPE);
      if ('problem' in route) throw new Error(route.problem);
      expect(route.exchange).toBe(levelName(1000, levels[0]));
      expect(walk(route.headers, route.exchange)).toEqual({
        waited: levels.map((k) => levelName(1000, k)),
        end: 'warren.delay.deliver',
      });
      const waitedMs = (levels as readonly number[]).reduce((sum, k) => sum + 1000 * 2 ** k, 0);
      expect(waitedMs).toBeGreaterThanOrEqual(delay);
      expect(waitedMs - delay).toBeLessThan(1000);
    }
  });

  it('carries the destination in a header the deliver binding for it matches, and no other', () => {
    const route = delayRoute(5000, { exchange: 'orders' }, SHAPE);
    if ('problem' in route) throw new Error(route.problem);
    expect(route.headers).toMatchObject({ [DELAY_HEADERS.exchange]: 'orders', [DELAY_HEADERS.delay]: 5000 });
    expect(headersMatch(deliveryBinding(1000, { exchange: 'orders' }).arguments, route.headers)).toBe(true);
    expect(headersMatch(deliveryBinding(1000, { exchange: 'other' }).arguments, route.headers)).toBe(false);
    expect(headersMatch(deliveryBinding(1000, { queue: 'orders' }).arguments, route.headers)).toBe(false);
    const toQueue = delayRoute(5000, { queue: 'jobs' }, SHAPE);
    if ('problem' in toQueue) throw new Error(toQueue.problem);
    expect(headersMatch(deliveryBinding(1000, { queue: 'jobs' }).arguments, toQueue.headers)).toBe(true);
  });

  it('declares a bounded ladder: a queue per level with a TTL of 2^k units, and the undeliverable queue', () => {
    const { queues, exchanges } = delayLadderTopology({ unitMs: 10, levels: 28 });
    expect(queues).toHaveLength(29);
    expect(exchanges).toHaveLength(30);
    expect(queues.find((q) => q.name === 'warren.delay.10ms.level-3')?.arguments).toEqual({
      'x-message-ttl': 80,
      'x-dead-letter-exchange': 'warren.delay.10ms.level-2',
    });
    expect(queues.find((q) => q.name === 'warren.delay.10ms.level-0')?.arguments['x-dead-letter-exchange']).toBe(
      'warren.delay.10ms.deliver',
    );
    // A level's declaration does not depend on the levels above it: ladders of other heights share it.
    expect(delayLadderTopology({ unitMs: 10, levels: 5 }).queues).toEqual(queues.slice(0, 6));
    expect(levelHeader(3)).not.toMatch(/^x-/);
  });

  it('refuses delays it cannot carry, saying why', () => {
    const problem = (delay: number) => {
      const route = delayRoute(delay, { queue: 'q' }, { unitMs: 1000, levels: 3 });
      return 'problem' in route ? route.problem : undefined;
    };
    expect(problem(7000)).toBeUndefined();
    expect(problem(7001)).toBe(
      'delay 7001 ms is over the longest the delay ladder carries, 7000 ms (2^3 - 1 seconds, delayLadder.levels)',
    );
    expect(problem(-1)).toBe('delay must be a number of milliseconds, 0 or more (got -1)');
    expect(problem(Number.NaN)).toMatch(/got NaN/);
    expect(problem('5' as unknown as number)).toMatch(/got 5/);
  });

  it('checks the module option', () => {
    expect(delayLadderShape(undefined)).toEqual({ unitMs: 1000, levels: 28 });
    expect(() => delayLadderShape({ levels: 29 })).toThrow(
      new WarrenConfigurationError(
        'WarrenModule options: delayLadder.levels must be a whole number from 1 to 28 (got 29)',
      ),
    );
    expect(() => delayLadderShape({ unitMs: 0.5 })).toThrow(/delayLadder.unitMs must be a whole number/);
  });

  it('tells its exchanges apart from the app’s', () => {
    expect(isDelayLadderExchange('warren.delay.level-0')).toBe(true);
    expect(isDelayLadderExchange('warren.delay.10ms.deliver')).toBe(true);
    expect(isDelayLadderExchange('warren.delayed')).toBe(false);
    expect(isDelayLadderExchange('orders')).toBe(false);
  });
});

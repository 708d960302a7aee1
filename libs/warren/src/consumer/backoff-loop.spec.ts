import { BackoffLoop } from './backoff-loop.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('BackoffLoop', () => {
  it('retries a failing attempt with each delay in turn, the last repeating, until it is done', async () => {
    const outcomes: (Error | 'done')[] = [new Error('one'), new Error('two'), new Error('three'), 'done'];
    const failures: [string, number][] = [];
    let attempts = 0;
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    const loop = new BackoffLoop(
      [1, 5],
      async () => {
        const outcome = outcomes[attempts++];
        if (outcome instanceof Error) throw outcome;
        finished();
        return outcome;
      },
      (err, next) => failures.push([(err as Error).message, next]),
    );
    loop.start();
    expect(loop.running).toBe(true);
    await done;
    await sleep(20);
    expect(attempts).toBe(4);
    expect(failures).toEqual([
      ['one', 5],
      ['two', 5],
      ['three', 5],
    ]);
    expect(loop.running).toBe(false);
  });

  it('makes no attempt once stopped, not even one already scheduled', async () => {
    let attempts = 0;
    const loop = new BackoffLoop(
      [5],
      async () => {
        attempts++;
        return 'again';
      },
      () => undefined,
    );
    loop.start();
    await sleep(30);
    const seen = attempts;
    expect(seen).toBeGreaterThan(0);
    loop.stop();
    await sleep(30);
    expect(attempts).toBe(seen);
    expect(loop.running).toBe(false);
  });
});

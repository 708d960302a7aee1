/**
 * Runs `attempt` until it reports done, waiting `delaysMs[i]` before the i-th try and the last
 * delay before every later one. A failed attempt is handed to `onFailure` with the wait before the
 * next; it never ends the loop. `stop()` ends it for good; `start()` again begins from the first
 * delay (a new fault is a new loop).
 */
export class BackoffLoop {
  private timer?: NodeJS.Timeout;
  private generation = 0;

  constructor(
    private readonly delaysMs: readonly number[],
    private readonly attempt: () => Promise<'done' | 'again'>,
    private readonly onFailure: (err: unknown, nextDelayMs: number) => void,
  ) {}

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** The wait before the first attempt. */
  get firstDelayMs(): number {
    return this.delayAt(0);
  }

  start(): void {
    this.stop();
    this.schedule(++this.generation, 0);
  }

  stop(): void {
    this.generation++;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private delayAt(i: number): number {
    return this.delaysMs[Math.min(i, this.delaysMs.length - 1)] ?? 0;
  }

  private schedule(generation: number, i: number): void {
    this.timer = setTimeout(() => {
      void this.run(generation, i);
    }, this.delayAt(i));
  }

  private async run(generation: number, i: number): Promise<void> {
    let outcome: 'done' | 'again';
    try {
      outcome = await this.attempt();
    } catch (err) {
      if (generation !== this.generation) return;
      this.onFailure(err, this.delayAt(i + 1));
      outcome = 'again';
    }
    if (generation !== this.generation) return;
    if (outcome === 'done') {
      this.timer = undefined;
      return;
    }
    this.schedule(generation, i + 1);
  }
}

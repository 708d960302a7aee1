/**
 * A growing list of what happened (messages handled, messages published) that a test can wait
 * on, instead of sleeping and hoping.
 */
export class MessageLog<T> {
  readonly entries: T[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(private readonly unsubscribe: () => void) {}

  /** Called by the source of the entries. */
  push(entry: T): void {
    this.entries.push(entry);
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Resolves with the first `count` entries once there are that many. */
  async waitForCount(count: number, timeoutMs = 10_000): Promise<T[]> {
    await this.until(() => this.entries.length >= count, `${count} entries (have ${this.entries.length})`, timeoutMs);
    return this.entries.slice(0, count);
  }

  /** Resolves with the first entry matching `predicate`, now or when it arrives. */
  async waitFor(predicate: (entry: T) => boolean, timeoutMs = 10_000): Promise<T> {
    let found: T | undefined;
    await this.until(
      () => (found = this.entries.find(predicate)) !== undefined,
      'an entry matching the predicate',
      timeoutMs,
    );
    return found as T;
  }

  /** Stops recording. */
  stop(): void {
    this.unsubscribe();
  }

  private until(done: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }
}

import type { StreamOffsetStore } from '../warren.options.js';

/** Warren's default offset store: offsets live as long as the app, and a restart starts afresh. */
export class InMemoryStreamOffsetStore implements StreamOffsetStore {
  private readonly offsets = new Map<string, number>();

  load(consumer: string, stream: string): number | undefined {
    return this.offsets.get(key(consumer, stream));
  }

  save(consumer: string, stream: string, offset: number): void {
    this.offsets.set(key(consumer, stream), offset);
  }
}

function key(consumer: string, stream: string): string {
  return `${consumer}\u0000${stream}`;
}

/**
 * The offset up to which every delivery of a stream consumer has settled. Deliveries arrive in
 * offset order but handlers finish in any order (prefetch > 1): storing the highest settled offset
 * would skip, after a restart, a message still in its handler. So the committed offset is the one
 * before the oldest delivery not settled yet.
 */
export class OffsetTracker {
  /** Offsets delivered and not yet committed, in delivery order. */
  private readonly pending: number[] = [];
  private readonly settled = new Set<number>();

  delivered(offset: number): void {
    this.pending.push(offset);
  }

  /** Marks `offset` settled; returns the new committed offset when it moved, else undefined. */
  settle(offset: number): number | undefined {
    // A delivery of a consumer before the last reset: a new consumer delivers it again.
    if (!this.pending.includes(offset)) return undefined;
    this.settled.add(offset);
    let committed: number | undefined;
    while (this.pending.length > 0 && this.settled.has(this.pending[0])) {
      committed = this.pending.shift()!;
      this.settled.delete(committed);
    }
    return committed;
  }

  /** Forgets deliveries a new consumer will deliver again (after a cancel or a reconnect). */
  reset(): void {
    this.pending.length = 0;
    this.settled.clear();
  }
}

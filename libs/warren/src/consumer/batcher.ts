import type { BatchSettings } from '../topology/batch.js';

/**
 * Collects a batch consumer's deliveries into batches: one goes out when it holds `size`, or
 * `timeoutMs` after its first delivery arrived, whichever comes first.
 */
export class Batcher<T> {
  private items: T[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly settings: BatchSettings,
    private readonly emit: (batch: T[]) => void,
  ) {}

  add(item: T): void {
    this.items.push(item);
    if (this.items.length >= this.settings.size) this.flush();
    else if (this.items.length === 1) this.timer = setTimeout(() => this.flush(), this.settings.timeoutMs);
  }

  /** Sends what is collected now, full or not (the timeout, a pause, the shutdown). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.items.length === 0) return;
    const batch = this.items;
    this.items = [];
    this.emit(batch);
  }

  /** Takes out the items `dead` picks (the deliveries of a channel that closed), unsent; returns them. */
  discard(dead: (item: T) => boolean): T[] {
    const gone = this.items.filter(dead);
    if (gone.length === 0) return gone;
    this.items = this.items.filter((item) => !dead(item));
    if (this.items.length === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    return gone;
  }
}

/**
 * Whether one `multiple` ack up to the highest of `tags` settles exactly those deliveries: the
 * channel's unsettled tags up to it are `tags` and nothing else (none failing on its own, none of
 * another batch in flight). A multiple ack settles every unsettled delivery up to its tag.
 */
export function multipleAckFits(unsettled: ReadonlySet<number>, tags: readonly number[]): boolean {
  if (tags.length < 2 || tags.some((tag) => !unsettled.has(tag))) return false;
  const last = Math.max(...tags);
  let below = 0;
  for (const tag of unsettled) if (tag <= last) below++;
  return below === new Set(tags).size;
}

/**
 * The fields a pending call carries to take its place among the deadlines (the call is its own
 * list node: no allocation per call besides the call). Written by `CallDeadlines` only.
 */
export interface Deadline {
  /** `performance.now()` time at which it expires. */
  at: number;
  prev?: Deadline;
  next?: Deadline;
  list?: DeadlineList;
}

export interface DeadlineList {
  timeoutMs: number;
  head?: Deadline;
  tail?: Deadline;
}

/**
 * The deadlines of an RPC client's pending calls, on ONE timer instead of a `setTimeout` per call
 * (issue 18: a Timeout object, its closure and a timer-list insert and removal per call). Calls
 * made with the same timeout expire in the order they were made, so each timeout value keeps its
 * calls in a list ordered by deadline, appended at the tail and unlinked in O(1) when a call
 * settles; the timer waits for the earliest head. It is cleared once no call is pending, so an
 * idle client keeps no process alive, as no pending `setTimeout` would.
 */
export class CallDeadlines<T extends Deadline> {
  private readonly lists = new Map<number, DeadlineList>();
  private size = 0;
  private timer?: NodeJS.Timeout;
  /** When the armed timer fires (`performance.now()` time); Infinity when none is armed. */
  private timerAt = Infinity;

  /** Told of each entry whose deadline has passed, once it has been removed. */
  constructor(private readonly expire: (entry: T) => void) {}

  /** `entry` expires `timeoutMs` from now unless it is removed first. */
  add(entry: T, timeoutMs: number): void {
    let list = this.lists.get(timeoutMs);
    if (!list) this.lists.set(timeoutMs, (list = { timeoutMs }));
    const deadline: Deadline = entry;
    deadline.at = performance.now() + timeoutMs;
    deadline.list = list;
    deadline.prev = list.tail;
    deadline.next = undefined;
    if (list.tail) list.tail.next = deadline;
    else list.head = deadline;
    list.tail = deadline;
    this.size++;
    if (deadline.at < this.timerAt) this.arm(deadline.at);
  }

  /** Takes `deadline` out; nothing happens for one already removed or expired. */
  remove(deadline: Deadline): void {
    const list = deadline.list;
    if (!list) return;
    if (deadline.prev) deadline.prev.next = deadline.next;
    else list.head = deadline.next;
    if (deadline.next) deadline.next.prev = deadline.prev;
    else list.tail = deadline.prev;
    deadline.list = deadline.prev = deadline.next = undefined;
    // Timeouts may differ from call to call (a caller's remaining budget): no empty list is kept.
    if (!list.head) this.lists.delete(list.timeoutMs);
    // An armed timer for a removed head fires early and finds nothing due: cheaper than re-arming.
    if (--this.size === 0) this.disarm();
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(at - performance.now())));
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    const due: T[] = [];
    let next = Infinity;
    for (const list of [...this.lists.values()]) {
      while (list.head && list.head.at <= now) {
        const head = list.head;
        due.push(head as T);
        this.remove(head);
      }
      if (list.head) next = Math.min(next, list.head.at);
    }
    if (next !== Infinity) this.arm(next);
    for (const entry of due) this.expire(entry);
  };
}

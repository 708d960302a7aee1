// What Warren declares once per vhost for every app alike, rather than per app: its default
// failure policy's retry queues and exchanges (`warren.retry-<ms>ms`, `warren.retry-<ms>ms.quorum`)
// and the delay ladder (`warren.delay.*`). A trial's app declares them at boot; the driver deletes
// them after every trial, so that each trial's app declares them afresh, as the first one did,
// and none boots onto what an earlier trial left.

const SHARED_PREFIXES = ['warren.retry-', 'warren.delay.'];

export function isWarrenShared(name: string): boolean {
  return SHARED_PREFIXES.some((prefix) => name.startsWith(prefix));
}

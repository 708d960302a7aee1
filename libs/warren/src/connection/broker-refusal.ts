/**
 * True when the broker refused an operation (its reply carries an AMQP reply code: 404 NOT_FOUND,
 * 406 PRECONDITION_FAILED, 403 ACCESS_REFUSED...), false when the channel or connection merely went
 * away underneath it ("Channel ended", "Channel closed"): the first is the app's mistake and must
 * be reported; the second heals itself, since every channel setup re-runs after the reconnect.
 */
export function isBrokerRefusal(err: unknown): boolean {
  return typeof (err as { code?: unknown } | null)?.code === 'number';
}

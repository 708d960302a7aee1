/**
 * Replaces the password of every amqp(s):// URL in `text` with `***`. Applied to every URL and
 * error message Warren logs or throws, so credentials never reach a log line.
 */
export function redactCredentials(text: string): string {
  return text.replace(/(amqps?:\/\/[^:@/\s]*):[^@/\s]*@/gi, '$1:***@');
}

/** `host:port/vhost` of a broker URL, for messages that name the broker without credentials. */
export function describeBroker(url: string): string {
  try {
    const u = new URL(url);
    if (u.protocol === 'memory:') return `memory://${u.hostname}`;
    const port = u.port || (u.protocol === 'amqps:' ? '5671' : '5672');
    return `${u.protocol}//${u.hostname}:${port}${u.pathname && u.pathname !== '/' ? u.pathname : '/'}`;
  } catch {
    return redactCredentials(url);
  }
}

/**
 * Replaces the password of every amqp(s):// URL in `text` with `***`. Applied to every URL and
 * error message Warren logs or throws, so credentials never reach a log line.
 */
export function redactCredentials(text: string): string {
  return text.replace(/(amqps?:\/\/[^:@/\s]*):[^@/\s]*@/gi, '$1:***@');
}

/**
 * Replaces the password of every URL in `text` (`scheme://user:password@host`) with `***`. Applied
 * to every URL and error message Warren logs or throws, so credentials never reach a log line,
 * whichever transport's URL, or mistyped scheme, carries them.
 */
export function redactCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:@/\s]*):[^@/\s]*@/gi, '$1:***@');
}

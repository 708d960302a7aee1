/** Where a URL starts: a scheme (any, a mistyped one included) and `://`. */
const URL_START = /[a-z][a-z0-9+.-]*:\/\//gi;

/**
 * Replaces the password of every URL in `text` (`scheme://user:password@host`) with `***`. Applied
 * to every URL and error message Warren logs or throws, so credentials never reach a log line,
 * whichever transport's URL, or mistyped scheme, carries them. The userinfo runs to the last `@`
 * before the URL ends (whitespace, a quote, or the next URL), so a password holding an unencoded
 * `/`, `@`, `#` or `?` is hidden whole: a URL parser would have read part of it as the host or
 * the path.
 */
export function redactCredentials(text: string): string {
  if (!text.includes('://')) return text;
  const starts = [...text.matchAll(URL_START)].map((m) => m.index);
  if (starts.length === 0) return text;
  let out = text.slice(0, starts[0]);
  for (let i = 0; i < starts.length; i++) {
    const segment = text.slice(starts[i], starts[i + 1] ?? text.length);
    const afterScheme = segment.indexOf('://') + 3;
    const end = afterScheme + firstBreak(segment.slice(afterScheme));
    out += redactOne(segment.slice(0, end), afterScheme) + segment.slice(end);
  }
  return out;
}

/** Where a URL written in a text ends: at whitespace or a quote. */
function firstBreak(text: string): number {
  const match = /[\s"'`<>]/.exec(text);
  return match ? match.index : text.length;
}

function redactOne(url: string, afterScheme: number): string {
  const at = url.lastIndexOf('@');
  if (at < afterScheme) return url;
  const colon = url.indexOf(':', afterScheme);
  if (colon === -1 || colon > at) return url;
  return `${url.slice(0, colon)}:***${url.slice(at)}`;
}

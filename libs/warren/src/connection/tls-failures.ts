/**
 * Node's codes for a broker certificate it does not trust (OpenSSL's verify results, as
 * `tls.connect()` reports them): a CA other than `tls.ca` signed it, or none did.
 */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
  'INVALID_CA',
]);

const OUT_OF_DATE = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/** What the broker's TLS alert says about the client's certificate. */
const CLIENT_CERT_REFUSED =
  /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED|DECRYPT_ERROR)$/;

/** What a socket that is not TLS answers a TLS hello with, as OpenSSL reads it. */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);

/**
 * A failed TLS handshake, told in the words of the option that fixes it, or undefined when `err` is
 * no TLS failure. Each of these fails every attempt alike (a wrong CA, a missing client
 * certificate, a port without TLS), so a boot fails at once rather than at its connect timeout.
 * OpenSSL's own text ("809C…:error:0A000418:SSL routines:…") gives way to its reason.
 */
export function tlsFailure(err: Error): Error | undefined {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  const reason = (err as { reason?: unknown }).reason;
  const said = `${code}: ${typeof reason === 'string' ? reason : err.message}`;
  if (UNTRUSTED.has(code)) {
    return new Error(
      `TLS: the broker's certificate is not signed by a CA this app trusts (${said}): is tls.ca the CA that signed it?`,
    );
  }
  if (OUT_OF_DATE.has(code)) return new Error(`TLS: the broker's certificate is out of date (${said})`);
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new Error(
      `TLS: the broker's certificate is not for the host connected to (${err.message}): connect by a name it holds, or set tls.servername`,
    );
  }
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
    return new Error(`TLS: the broker requires a client certificate (${said}): give tls.cert and tls.key`);
  }
  if (CLIENT_CERT_REFUSED.test(code)) {
    return new Error(
      `TLS: the broker refused the client certificate (${said}): is tls.cert signed by a CA the broker trusts (its ssl_options.cacertfile)?`,
    );
  }
  if (NOT_TLS.has(code)) {
    return new Error(
      `TLS: the broker did not answer in TLS (${said}): is the URL's port its TLS listener (listeners.ssl, 5671 by default)?`,
    );
  }
  if (code.startsWith('ERR_SSL_')) return new Error(`TLS: the handshake with the broker failed (${said})`);
  return undefined;
}

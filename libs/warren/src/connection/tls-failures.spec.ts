import { tlsFailure } from './tls-failures.js';

/** An error as Node's tls.connect() reports one: a message, a code, and OpenSSL's reason for alerts. */
function nodeError(code: string, message: string, reason?: string): Error {
  return Object.assign(new Error(message), { code, ...(reason ? { reason } : {}) });
}

describe('tlsFailure', () => {
  it('says a broker certificate of another CA is not trusted, pointing at tls.ca', () => {
    expect(
      tlsFailure(nodeError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'))?.message,
    ).toBe(
      "TLS: the broker's certificate is not signed by a CA this app trusts (SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain): is tls.ca the CA that signed it?",
    );
    expect(
      tlsFailure(nodeError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'))?.message,
    ).toContain('is tls.ca the CA that signed it?');
  });

  it("gives OpenSSL's reason for the broker's alerts, not its error stack", () => {
    const required = nodeError(
      'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
      '809C0DCE2D7F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116',
      'tlsv13 alert certificate required',
    );
    expect(tlsFailure(required)?.message).toBe(
      'TLS: the broker requires a client certificate (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: tlsv13 alert certificate required): give tls.cert and tls.key',
    );
    const unknownCa = nodeError('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', '…', 'tlsv1 alert unknown ca');
    expect(tlsFailure(unknownCa)?.message).toBe(
      'TLS: the broker refused the client certificate (ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: tlsv1 alert unknown ca): is tls.cert signed by a CA the broker trusts (its ssl_options.cacertfile)?',
    );
  });

  it('says when the port does not speak TLS, and when the certificate names another host', () => {
    expect(tlsFailure(nodeError('ERR_SSL_WRONG_VERSION_NUMBER', '…', 'wrong version number'))?.message).toContain(
      "the broker did not answer in TLS (ERR_SSL_WRONG_VERSION_NUMBER: wrong version number): is the URL's port its TLS listener",
    );
    const altname = nodeError(
      'ERR_TLS_CERT_ALTNAME_INVALID',
      "Hostname/IP does not match certificate's altnames: IP: 127.0.0.2 is not in the cert's list: 127.0.0.1",
    );
    expect(tlsFailure(altname)?.message).toContain('set tls.servername');
  });

  it('says when the broker certificate is out of date', () => {
    expect(tlsFailure(nodeError('CERT_HAS_EXPIRED', 'certificate has expired'))?.message).toBe(
      "TLS: the broker's certificate is out of date (CERT_HAS_EXPIRED: certificate has expired)",
    );
  });

  it('leaves other errors alone: a retry may fix them', () => {
    expect(tlsFailure(nodeError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5671'))).toBeUndefined();
    expect(tlsFailure(new Error('Socket closed abruptly during opening handshake'))).toBeUndefined();
  });
});

import amqplib from 'amqplib';
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { WarrenConfigurationError } from '../warren.errors.js';
import { WARREN_DEFAULTS } from '../warren.defaults.js';
import type { WarrenModuleOptions, WarrenTlsOptions } from '../warren.options.js';
import { schemeOf } from './transport.js';

/** What a connection's sockets are given for TLS and authentication, checked once at boot. */
export interface SocketSecurity {
  /** Merged into amqplib's socket options: `tls.connect()`'s own, and amqplib's `credentials`. */
  socketOptions: Record<string, unknown>;
  /** Settings that work but weaken the connection: logged as warnings at boot. */
  warnings: string[];
}

const TLS_KEYS: readonly (keyof WarrenTlsOptions)[] = [
  'ca',
  'cert',
  'key',
  'passphrase',
  'servername',
  'rejectUnauthorized',
];
const AUTHS = ['plain', 'external'] as const;

/**
 * The socket options of `options.tls` and `options.auth`, refused with an error naming the option
 * at fault when they cannot work: tls with a plain `amqp://` URL (it would be ignored and the
 * connection sent in clear), a certificate without its key, a key its passphrase does not open,
 * EXTERNAL without a certificate. The key is opened here, at boot, rather than at the first
 * connection attempt, whose failure would be retried until the connect timeout. No message here
 * ever quotes the contents of a certificate, a key or a passphrase: only the options' names.
 */
export function socketSecurity(options: WarrenModuleOptions, urls: readonly string[], who: string): SocketSecurity {
  const auth = options.auth ?? WARREN_DEFAULTS.auth;
  if (!AUTHS.includes(auth)) {
    throw new WarrenConfigurationError(`${who}: auth must be ${AUTHS.map((a) => `'${a}'`).join(' or ')}`);
  }
  const tls = options.tls;
  if (tls === undefined) {
    if (auth === 'external') {
      throw new WarrenConfigurationError(
        `${who}: auth 'external' logs in as the client certificate's identity: give tls.cert and tls.key, and amqps:// URLs`,
      );
    }
    return { socketOptions: {}, warnings: [] };
  }
  if (tls === null || typeof tls !== 'object' || Array.isArray(tls)) {
    throw new WarrenConfigurationError(`${who}: tls must be an object ({ ca, cert, key, ... })`);
  }
  const unknown = Object.keys(tls).filter((k) => !TLS_KEYS.includes(k as keyof WarrenTlsOptions));
  if (unknown.length > 0) {
    throw new WarrenConfigurationError(
      `${who}: tls has no option ${unknown.map((k) => `"${k}"`).join(', ')} (it takes ${TLS_KEYS.join(', ')})`,
    );
  }
  // Without TLS on the socket, every one of these would be ignored without a word.
  const plain = urls.find((url) => schemeOf(url) === 'amqp');
  if (plain !== undefined) {
    throw new WarrenConfigurationError(
      `${who}: tls is set but a broker URL is amqp:// (${hostOf(plain)}): use amqps:// (RabbitMQ's TLS listener, port 5671 by default), or drop tls`,
    );
  }
  checkPem(tls.ca, 'tls.ca', who, true);
  checkPem(tls.cert, 'tls.cert', who);
  checkPem(tls.key, 'tls.key', who);
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new WarrenConfigurationError(
      `${who}: tls.${tls.cert === undefined ? 'key' : 'cert'} is set without tls.${tls.cert === undefined ? 'cert' : 'key'}: a client certificate needs both`,
    );
  }
  if (tls.passphrase !== undefined && typeof tls.passphrase !== 'string') {
    throw new WarrenConfigurationError(`${who}: tls.passphrase must be a string`);
  }
  if (tls.passphrase !== undefined && tls.key === undefined) {
    throw new WarrenConfigurationError(`${who}: tls.passphrase is set without tls.key`);
  }
  if (tls.servername !== undefined && (typeof tls.servername !== 'string' || tls.servername === '')) {
    throw new WarrenConfigurationError(`${who}: tls.servername must be a host name`);
  }
  if (tls.rejectUnauthorized !== undefined && typeof tls.rejectUnauthorized !== 'boolean') {
    throw new WarrenConfigurationError(`${who}: tls.rejectUnauthorized must be true or false`);
  }
  if (auth === 'external' && tls.cert === undefined) {
    throw new WarrenConfigurationError(
      `${who}: auth 'external' logs in as the client certificate's identity: give tls.cert and tls.key`,
    );
  }
  openKeyMaterial(tls, who);
  const rejectUnauthorized = tls.rejectUnauthorized ?? WARREN_DEFAULTS.tls.rejectUnauthorized;
  const socketOptions: Record<string, unknown> = { rejectUnauthorized };
  for (const key of ['ca', 'cert', 'key', 'passphrase', 'servername'] as const) {
    if (tls[key] !== undefined) socketOptions[key] = tls[key];
  }
  if (auth === 'external') socketOptions.credentials = amqplib.credentials.external();
  const warnings = rejectUnauthorized
    ? []
    : [
        "tls.rejectUnauthorized is false: the broker's certificate is not checked, so anyone between the app and the broker can read and change its traffic",
      ];
  return { socketOptions, warnings };
}

/** `amqps://host:port`, the way errors name a broker: never its credentials. */
function hostOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return `${schemeOf(url)}://…`;
  }
}

/**
 * PEM text or a Buffer (of PEM), or a list of them for `ca`. A string without a PEM header is most
 * likely a file's path: Warren reads no files, so it says so rather than let OpenSSL's "no start
 * line" stand for it.
 */
function checkPem(value: unknown, name: string, who: string, list = false): void {
  if (value === undefined) return;
  const items = list && Array.isArray(value) ? value : [value];
  for (const item of items) {
    if (Buffer.isBuffer(item)) continue;
    if (typeof item !== 'string') {
      throw new WarrenConfigurationError(
        `${who}: ${name} must be PEM text or a Buffer${list ? ' (or a list of them)' : ''}`,
      );
    }
    if (!item.includes('-----BEGIN ')) {
      throw new WarrenConfigurationError(
        `${who}: ${name} is not PEM text (no "-----BEGIN" line): give the file's contents (readFileSync(path)), not its path`,
      );
    }
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Parses every certificate of a CA bundle (PEM text, a Buffer, or a list of them). */
function readCertificates(ca: string | Buffer | (string | Buffer)[]): void {
  for (const item of Array.isArray(ca) ? ca : [ca]) {
    const blocks = item.toString().match(PEM_CERTIFICATE);
    if (!blocks) throw new Error('it holds no "-----BEGIN CERTIFICATE-----" block');
    for (const block of blocks) new X509Certificate(block);
  }
}

/** Opens the CA, the certificate and the key as the socket would, so a bad one fails the boot by name. */
function openKeyMaterial(tls: WarrenTlsOptions, who: string): void {
  const attempt = (name: string, open: () => unknown) => {
    try {
      open();
    } catch (err) {
      // OpenSSL's reason ("bad decrypt", "key values mismatch"): it never quotes the material.
      const reason = (err as Error).message.replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/, '');
      throw new WarrenConfigurationError(`${who}: ${name} cannot be used: ${reason}`);
    }
  };
  // Node skips a CA it cannot read without a word: every broker would then be "not trusted".
  if (tls.ca !== undefined) attempt('tls.ca', () => readCertificates(tls.ca!));
  if (tls.cert !== undefined && tls.key !== undefined) {
    const what = tls.passphrase === undefined ? 'tls.cert with tls.key' : 'tls.cert with tls.key and tls.passphrase';
    attempt(what, () => createSecureContext({ cert: tls.cert, key: tls.key, passphrase: tls.passphrase }));
  }
}

import { redactCredentials } from '../connection/redact.js';
import { CliError } from './args.js';

/** RabbitMQ's management HTTP API, reached from a broker's AMQP URL or its own http(s):// URL. */
export class ManagementApi {
  private readonly base: URL;
  private readonly auth: string;
  /** The vhost the URL names, `/` by default. */
  readonly vhost: string;
  /** The API's address, without credentials: what errors name. */
  readonly where: string;

  /**
   * `url` is the broker's amqp(s):// URL (the API is then on the same host, port 15672, with the
   * same credentials and vhost) or the API's own http(s):// URL; `management` overrides where
   * the API is.
   */
  constructor(url: string, management?: string) {
    let broker: URL;
    try {
      broker = new URL(url);
    } catch {
      throw new CliError(`"${redactCredentials(url)}" is not a URL (amqp://user:password@host:5672/vhost)`);
    }
    const amqp = broker.protocol === 'amqp:' || broker.protocol === 'amqps:';
    const api = management ? new URL(management) : amqp ? new URL(`http://${broker.hostname}:15672/`) : broker;
    if (api.protocol !== 'http:' && api.protocol !== 'https:') {
      throw new CliError(`the management API's URL must be http(s)://, got ${redactCredentials(api.href)}`);
    }
    const user = decodeURIComponent(api.username || broker.username || 'guest');
    const password = decodeURIComponent(api.password || broker.password || 'guest');
    this.auth = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    const path = amqp ? broker.pathname : '';
    this.vhost = path && path !== '/' ? decodeURIComponent(path.slice(1)) : '/';
    api.username = '';
    api.password = '';
    api.pathname = api.pathname.replace(/\/*$/, '/');
    this.base = api;
    this.where = api.href;
  }

  async get<T>(path: string): Promise<T> {
    return (await this.request('GET', path)) as T;
  }

  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const url = new URL(path.replace(/^\//, ''), this.base);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { authorization: this.auth, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      const cause = ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
      throw new CliError(
        `no RabbitMQ management API answers at ${this.where} (${cause}): enable the plugin ` +
          '(rabbitmq-plugins enable rabbitmq_management) or give its URL with --management http://host:15672',
      );
    }
    if (response.status === 401) {
      throw new CliError(
        `the management API at ${this.where} refused the credentials (401): check the URL's user and password`,
      );
    }
    if (!response.ok) {
      const text = (await response.text()).slice(0, 300);
      throw new CliError(
        `the management API at ${this.where} answered ${method} ${path} with ${response.status}: ${text}`,
      );
    }
    const text = await response.text();
    return text ? JSON.parse(text) : undefined;
  }

  /** `/api/<what>/<vhost>`. */
  vhostPath(what: string): string {
    return `api/${what}/${encodeURIComponent(this.vhost)}`;
  }
}

import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of the broker, for fault tests: `cut()` drops every
 * connection like a network failure; `refuse()` keeps new ones out until `accept()`.
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private refusing = false;
  /** Connections accepted so far: a reconnect shows as this number going up. */
  accepted = 0;
  /** Bytes the clients have sent towards the broker so far. */
  bytesFromClients = 0;
  private cutAt?: number;
  private server?: Server;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  static forUrl(url: string): TcpProxy {
    const u = new URL(url);
    return new TcpProxy(u.hostname, Number(u.port || 5672));
  }

  /** The broker URL with the proxy's port in place of the broker's. */
  url(brokerUrl: string): string {
    const u = new URL(brokerUrl);
    u.port = String(this.port);
    return u.toString();
  }

  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (this.refusing) {
        client.destroy();
        return;
      }
      this.accepted++;
      const upstream = createConnection({ host: this.targetHost, port: this.targetPort });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.on('data', (chunk: Buffer) => {
        this.bytesFromClients += chunk.length;
        if (this.cutAt !== undefined && this.bytesFromClients >= this.cutAt) {
          this.cutAt = undefined;
          this.cut();
        }
      });
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  get connections(): number {
    return this.sockets.size / 2;
  }

  /** Drops every connection through the proxy at once. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Cuts every connection once, as soon as the clients have sent `bytes` more bytes. */
  cutAfter(bytes: number): void {
    this.cutAt = this.bytesFromClients + bytes;
  }

  /** Cuts every connection and resolves once the client has opened `expected` new ones. */
  async cutAndAwaitReconnect(expected: number, timeoutMs = 20_000): Promise<void> {
    const before = this.accepted;
    this.cut();
    const deadline = Date.now() + timeoutMs;
    while (this.accepted < before + expected || this.connections < expected) {
      if (Date.now() > deadline) throw new Error(`no reconnect through the proxy within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  refuse(): void {
    this.refusing = true;
    this.cut();
  }

  accept(): void {
    this.refusing = false;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

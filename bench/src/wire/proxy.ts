// A TCP proxy between a trial's process and the broker, on 127.0.0.1, that reads the AMQP frames
// going each way and counts, for every connection, what shows whether publishes are confirmed:
// confirm.select from the client, basic.publish, and the broker's basic.ack / basic.nack. It can
// also hold back everything the broker sends by a fixed delay (in order), so that a publish that
// waits for its confirm takes at least that long to settle and one that does not, does not.
import net, { type AddressInfo } from 'node:net';
import { ackArgs, connectionName, FrameReader, METHODS, methodKey, type MethodFrame } from './frames.js';

export interface ConnectionWire {
  /** connection_name from connection.start-ok, or `#n` in the order connections were made. */
  name: string;
  /** From the client. */
  confirmSelects: number;
  publishes: number;
  clientAcks: number;
  /** From the broker. */
  confirmSelectOks: number;
  deliveries: number;
  brokerAcks: number;
  brokerNacks: number;
  /** Publishes the broker's acks cover (an ack with `multiple` covers every tag up to its own). */
  confirmedPublishes: number;
}

export class FrameCountingProxy {
  readonly connections: ConnectionWire[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private readonly brokerDelayMs: number,
  ) {}

  /** Listens on 127.0.0.1 (a free port) and forwards every connection to `target`. */
  static async start(target: { host: string; port: number }, brokerDelayMs = 0): Promise<FrameCountingProxy> {
    const server = net.createServer();
    const proxy = new FrameCountingProxy(server, brokerDelayMs);
    server.on('connection', (client) => proxy.accept(client, target));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** `url` (credentials, vhost and all) pointed at the proxy instead. */
  urlFor(url: string): string {
    const proxied = new URL(url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(this.port);
    return proxied.toString();
  }

  /** Forgets the counts so far (connections still open keep counting into the new list). */
  reset(): void {
    this.connections.length = 0;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, target: { host: string; port: number }): void {
    const wire: ConnectionWire = {
      name: `#${this.connections.length + 1}`,
      confirmSelects: 0,
      publishes: 0,
      clientAcks: 0,
      confirmSelectOks: 0,
      deliveries: 0,
      brokerAcks: 0,
      brokerNacks: 0,
      confirmedPublishes: 0,
    };
    this.connections.push(wire);
    const broker = net.connect({ host: target.host, port: target.port, noDelay: true });
    client.setNoDelay(true);
    for (const socket of [client, broker]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      // Either side gone: close the other one as well, as a direct connection would be.
      socket.on('error', () => undefined);
    }
    client.on('close', () => broker.destroy());
    broker.on('close', () => client.destroy());

    const fromClient = new FrameReader(true, (frame) => countClient(wire, frame));
    const lastConfirmed = new Map<number, number>();
    const fromBroker = new FrameReader(false, (frame) => countBroker(wire, frame, lastConfirmed));
    client.on('data', (chunk: Buffer) => {
      fromClient.push(chunk);
      broker.write(chunk);
    });
    broker.on('data', (chunk: Buffer) => {
      fromBroker.push(chunk);
      // Timers of one duration fire in the order they were set: the stream stays in order.
      if (this.brokerDelayMs > 0) setTimeout(() => client.writable && client.write(chunk), this.brokerDelayMs);
      else client.write(chunk);
    });
  }
}

function countClient(wire: ConnectionWire, frame: MethodFrame): void {
  switch (methodKey(frame)) {
    case METHODS.connectionStartOk:
      wire.name = connectionName(frame.args) ?? wire.name;
      break;
    case METHODS.confirmSelect:
      wire.confirmSelects++;
      break;
    case METHODS.basicPublish:
      wire.publishes++;
      break;
    case METHODS.basicAck:
      wire.clientAcks++;
      break;
  }
}

/** `lastConfirmed`: per channel, the highest delivery tag the broker has acked or nacked. */
function countBroker(wire: ConnectionWire, frame: MethodFrame, lastConfirmed: Map<number, number>): void {
  switch (methodKey(frame)) {
    case METHODS.confirmSelectOk:
      wire.confirmSelectOks++;
      break;
    case METHODS.basicDeliver:
      wire.deliveries++;
      break;
    case METHODS.basicAck:
    case METHODS.basicNack: {
      const { deliveryTag, multiple } = ackArgs(frame.args);
      const last = lastConfirmed.get(frame.channel) ?? 0;
      if (methodKey(frame) === METHODS.basicAck) {
        wire.brokerAcks++;
        wire.confirmedPublishes += multiple ? Math.max(0, deliveryTag - last) : 1;
      } else {
        wire.brokerNacks++;
      }
      lastConfirmed.set(frame.channel, Math.max(last, deliveryTag));
      break;
    }
  }
}

import { connect as tcpConnect, type Socket } from 'node:net';

/**
 * A minimal AMQP 0-9-1 publisher written from the spec, for tests that must send what no client
 * library would: header tables nested thousands deep, values at and past AMQP's limits, tables of
 * any shape. Properties and header tables go on the wire exactly as the test builds them, so the
 * input comes from outside Warren and outside amqplib. Publishes with confirms.
 */
export class RawAmqpPublisher {
  private buffer = Buffer.alloc(0);
  private waiters: { accept: (f: Frame) => boolean; resolve: (f: Frame) => void; reject: (e: Error) => void }[] = [];
  private closedWith?: Error;
  private deliveryTag = 0;
  private channel = 0;
  private frameMax = 131_072;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('socket closed')));
  }

  static async connect(url: string): Promise<RawAmqpPublisher> {
    const parsed = new URL(url);
    const socket = tcpConnect({ host: parsed.hostname, port: Number(parsed.port || 5672) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawAmqpPublisher(socket);
    socket.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'));
    await client.expect(0, 10, 10);
    const user = decodeURIComponent(parsed.username || 'guest');
    const password = decodeURIComponent(parsed.password || 'guest');
    client.sendMethod(
      0,
      10,
      11,
      Buffer.concat([
        table([]),
        shortstr('PLAIN'),
        longstr(Buffer.from(`\x00${user}\x00${password}`)),
        shortstr('en_US'),
      ]),
    );
    const tune = await client.expect(0, 10, 30);
    const serverFrameMax = tune.args.readUInt32BE(2);
    if (serverFrameMax) client.frameMax = Math.min(client.frameMax, serverFrameMax);
    const tuneOk = Buffer.alloc(8);
    tuneOk.writeUInt16BE(tune.args.readUInt16BE(0), 0);
    tuneOk.writeUInt32BE(client.frameMax, 2);
    tuneOk.writeUInt16BE(0, 6);
    client.sendMethod(0, 10, 31, tuneOk);
    const vhost = decodeURIComponent(parsed.pathname.slice(1)) || '/';
    client.sendMethod(0, 10, 40, Buffer.concat([shortstr(vhost), shortstr(''), Buffer.from([0])]));
    await client.expect(0, 10, 41);
    await client.openChannel();
    return client;
  }

  /**
   * Publishes with `properties` as given (see `rawProperties`) and waits for the broker's confirm.
   * Resolves 'closed' when the broker closed the channel instead (a property it refuses): a fresh
   * channel is opened for the next publish.
   */
  async publish(exchange: string, routingKey: string, body: Buffer, properties: Buffer): Promise<'ok' | 'closed'> {
    const channel = this.channel;
    const tag = ++this.deliveryTag;
    const outcome = this.next(
      (f) =>
        f.channel === channel &&
        ((f.classId === 60 && (f.methodId === 80 || f.methodId === 120) && f.args.readUInt32BE(4) >= tag) ||
          (f.classId === 20 && f.methodId === 40)),
    );
    this.sendMethod(
      channel,
      60,
      40,
      Buffer.concat([Buffer.from([0, 0]), shortstr(exchange), shortstr(routingKey), Buffer.from([0])]),
    );
    const header = Buffer.alloc(12);
    header.writeUInt16BE(60, 0);
    header.writeUInt16BE(0, 2);
    header.writeBigUInt64BE(BigInt(body.length), 4);
    this.sendFrame(2, channel, Buffer.concat([header, properties]));
    const maxBody = this.frameMax - 8;
    for (let offset = 0; offset < body.length; offset += maxBody) {
      this.sendFrame(3, channel, body.subarray(offset, offset + maxBody));
    }
    const frame = await outcome;
    if (frame.classId === 20) {
      this.sendMethod(channel, 20, 41, Buffer.alloc(0));
      await this.openChannel();
      return 'closed';
    }
    return 'ok';
  }

  async close(): Promise<void> {
    if (this.closedWith) return;
    const ok = this.expect(0, 10, 51).catch(() => undefined);
    const args = Buffer.concat([Buffer.from([0, 200]), shortstr('bye'), Buffer.alloc(4)]);
    this.sendMethod(0, 10, 50, args);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ok, new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    this.socket.destroy();
  }

  private async openChannel(): Promise<void> {
    this.channel++;
    this.deliveryTag = 0;
    this.sendMethod(this.channel, 20, 10, shortstr(''));
    await this.expect(this.channel, 20, 11);
    this.sendMethod(this.channel, 85, 10, Buffer.from([0]));
    await this.expect(this.channel, 85, 11);
  }

  private expect(channel: number, classId: number, methodId: number): Promise<Frame> {
    return this.next((f) => f.channel === channel && f.classId === classId && f.methodId === methodId);
  }

  private next(accept: (f: Frame) => boolean): Promise<Frame> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => this.waiters.push({ accept, resolve, reject }));
  }

  private sendMethod(channel: number, classId: number, methodId: number, args: Buffer): void {
    const head = Buffer.alloc(4);
    head.writeUInt16BE(classId, 0);
    head.writeUInt16BE(methodId, 2);
    this.sendFrame(1, channel, Buffer.concat([head, args]));
  }

  private sendFrame(type: number, channel: number, payload: Buffer): void {
    const head = Buffer.alloc(7);
    head.writeUInt8(type, 0);
    head.writeUInt16BE(channel, 1);
    head.writeUInt32BE(payload.length, 3);
    this.socket.write(Buffer.concat([head, payload, Buffer.from([0xce])]));
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 8) {
      const size = this.buffer.readUInt32BE(3);
      if (this.buffer.length < size + 8) return;
      const type = this.buffer.readUInt8(0);
      const channel = this.buffer.readUInt16BE(1);
      const payload = this.buffer.subarray(7, 7 + size);
      this.buffer = this.buffer.subarray(size + 8);
      if (type !== 1) continue;
      const frame: Frame = {
        channel,
        classId: payload.readUInt16BE(0),
        methodId: payload.readUInt16BE(2),
        args: payload.subarray(4),
      };
      if (frame.classId === 10 && frame.methodId === 50) {
        this.sendMethod(0, 10, 51, Buffer.alloc(0));
        const text = frame.args.toString('utf8', 3, 3 + frame.args.readUInt8(2));
        this.fail(new Error(`the broker closed the connection: ${text}`));
        return;
      }
      const index = this.waiters.findIndex((w) => w.accept(frame));
      if (index !== -1) this.waiters.splice(index, 1)[0].resolve(frame);
    }
  }

  private fail(err: Error): void {
    this.closedWith ??= err;
    for (const waiter of this.waiters.splice(0)) waiter.reject(err);
  }
}

interface Frame {
  channel: number;
  classId: number;
  methodId: number;
  args: Buffer;
}

function shortstr(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 255) throw new Error(`shortstr over 255 bytes: ${text.slice(0, 40)}`);
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

function longstr(bytes: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** A field table (with its length) of entries already encoded as `[key, tag + value bytes]`. */
export function table(entries: [string, Buffer][]): Buffer {
  return longstr(Buffer.concat(entries.map(([key, value]) => Buffer.concat([shortstr(key), value]))));
}

/** Field values with their type tag, as RabbitMQ reads them. */
export const field = {
  string: (text: string) => Buffer.concat([Buffer.from('S'), longstr(Buffer.from(text, 'utf8'))]),
  int: (n: number) => {
    const b = Buffer.alloc(5);
    b.write('I');
    b.writeInt32BE(n, 1);
    return b;
  },
  long: (n: bigint) => {
    const b = Buffer.alloc(9);
    b.write('l');
    b.writeBigInt64BE(n, 1);
    return b;
  },
  double: (n: number) => {
    const b = Buffer.alloc(9);
    b.write('d');
    b.writeDoubleBE(n, 1);
    return b;
  },
  bool: (v: boolean) => Buffer.from([0x74, v ? 1 : 0]),
  void: () => Buffer.from('V'),
  bytes: (bytes: Buffer) => Buffer.concat([Buffer.from('x'), longstr(bytes)]),
  timestamp: (seconds: bigint) => {
    const b = Buffer.alloc(9);
    b.write('T');
    b.writeBigUInt64BE(seconds, 1);
    return b;
  },
  table: (entries: [string, Buffer][]) => Buffer.concat([Buffer.from('F'), table(entries)]),
  array: (values: Buffer[]) => Buffer.concat([Buffer.from('A'), longstr(Buffer.concat(values))]),
};

/**
 * A header table whose key `key` holds a table nested `depth` levels deep (`{ n: { n: ... } }`),
 * built in one buffer: 7 bytes a level, so 10 000 levels are 70 KB.
 */
export function deepTable(key: string, depth: number): Buffer {
  const level = 7;
  const keyBytes = Buffer.from(key);
  const below = (depth - 1) * level;
  const top = Buffer.alloc(1 + keyBytes.length + 5 + below);
  top.writeUInt8(keyBytes.length, 0);
  keyBytes.copy(top, 1);
  top.write('F', 1 + keyBytes.length);
  top.writeUInt32BE(below, 2 + keyBytes.length);
  for (let i = 1; i < depth; i++) {
    const at = 6 + keyBytes.length + (i - 1) * level;
    top.writeUInt8(1, at);
    top.write('n', at + 1);
    top.write('F', at + 2);
    top.writeUInt32BE((depth - 1 - i) * level, at + 3);
  }
  return longstr(top);
}

export interface RawProperties {
  contentType?: string;
  contentEncoding?: string;
  /** A field table as `table()` or `deepTable()` builds it. */
  headers?: Buffer;
  deliveryMode?: number;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  expiration?: string;
  messageId?: string;
  timestamp?: bigint;
  type?: string;
  userId?: string;
  appId?: string;
}

/** basic.properties as a content header carries them: the flags, then each present field. */
export function rawProperties(p: RawProperties): Buffer {
  let flags = 0;
  const parts: Buffer[] = [];
  const str = (bit: number, value: string | undefined) => {
    if (value === undefined) return;
    flags |= bit;
    parts.push(shortstr(value));
  };
  const octet = (bit: number, value: number | undefined) => {
    if (value === undefined) return;
    flags |= bit;
    parts.push(Buffer.from([value]));
  };
  str(0x8000, p.contentType);
  str(0x4000, p.contentEncoding);
  if (p.headers) {
    flags |= 0x2000;
    parts.push(p.headers);
  }
  octet(0x1000, p.deliveryMode);
  octet(0x0800, p.priority);
  str(0x0400, p.correlationId);
  str(0x0200, p.replyTo);
  str(0x0100, p.expiration);
  str(0x0080, p.messageId);
  if (p.timestamp !== undefined) {
    flags |= 0x0040;
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(p.timestamp);
    parts.push(b);
  }
  str(0x0020, p.type);
  str(0x0010, p.userId);
  str(0x0008, p.appId);
  const head = Buffer.alloc(2);
  head.writeUInt16BE(flags);
  return Buffer.concat([head, ...parts]);
}

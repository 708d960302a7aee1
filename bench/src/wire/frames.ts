// Just enough of AMQP 0-9-1's framing to follow a connection from outside: split a byte stream
// into frames and pick out the method frames (class id, method id, arguments). A frame is
// type (1 octet), channel (2), payload size (4), the payload, and the frame-end octet 0xCE; the
// client's side of a connection starts with the 8-octet protocol header "AMQP\0\0\x09\x01".

const FRAME_HEADER = 7;
const FRAME_END = 0xce;
const METHOD_FRAME = 1;
const PROTOCOL_HEADER = 8;

export interface MethodFrame {
  channel: number;
  classId: number;
  methodId: number;
  /** The method's arguments (after class and method id). */
  args: Buffer;
}

/** The methods the wire check counts, as `class/method`. */
export const METHODS = {
  connectionStartOk: '10/11',
  basicPublish: '60/40',
  basicDeliver: '60/60',
  basicAck: '60/80',
  basicNack: '60/120',
  confirmSelect: '85/10',
  confirmSelectOk: '85/11',
} as const;

export function methodKey(frame: MethodFrame): string {
  return `${frame.classId}/${frame.methodId}`;
}

/** Reassembles frames from the chunks of one direction of one connection. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);
  private headerLeft: number;

  constructor(
    clientSide: boolean,
    private readonly onMethod: (frame: MethodFrame) => void,
  ) {
    this.headerLeft = clientSide ? PROTOCOL_HEADER : 0;
  }

  push(chunk: Buffer): void {
    let data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    if (this.headerLeft > 0) {
      const skip = Math.min(this.headerLeft, data.length);
      this.headerLeft -= skip;
      data = data.subarray(skip);
    }
    let at = 0;
    while (data.length - at >= FRAME_HEADER) {
      const size = data.readUInt32BE(at + 3);
      const end = at + FRAME_HEADER + size;
      if (data.length < end + 1) break;
      if (data[end] !== FRAME_END) throw new Error(`AMQP framing lost at byte ${at}: no frame-end octet`);
      if (data[at] === METHOD_FRAME && size >= 4) {
        const payload = data.subarray(at + FRAME_HEADER, end);
        this.onMethod({
          channel: data.readUInt16BE(at + 1),
          classId: payload.readUInt16BE(0),
          methodId: payload.readUInt16BE(2),
          args: payload.subarray(4),
        });
      }
      at = end + 1;
    }
    // Copied: the rest of a frame must not pin the whole chunk it came in.
    this.pending = Buffer.from(data.subarray(at));
  }
}

/** basic.ack / basic.nack: delivery-tag (long long) and the `multiple` bit. */
export function ackArgs(args: Buffer): { deliveryTag: number; multiple: boolean } {
  return { deliveryTag: Number(args.readBigUInt64BE(0)), multiple: (args[8] & 1) === 1 };
}

/** connection.start-ok's client-properties: the `connection_name` string, when the client sent one. */
export function connectionName(args: Buffer): string | undefined {
  const tableSize = args.readUInt32BE(0);
  const table = args.subarray(4, 4 + tableSize);
  let at = 0;
  while (at < table.length) {
    const nameLength = table[at];
    const name = table.toString('utf8', at + 1, at + 1 + nameLength);
    at += 1 + nameLength;
    const type = String.fromCharCode(table[at]);
    at += 1;
    if (name === 'connection_name' && type === 'S') {
      const length = table.readUInt32BE(at);
      return table.toString('utf8', at + 4, at + 4 + length);
    }
    at += fieldSize(table, at, type);
  }
  return undefined;
}

/** The size in octets of a field-table value of `type` at `at` (RabbitMQ's field types). */
function fieldSize(buffer: Buffer, at: number, type: string): number {
  switch (type) {
    case 't':
    case 'b':
    case 'B':
      return 1;
    case 's':
    case 'u':
      return 2;
    case 'I':
    case 'i':
    case 'f':
      return 4;
    case 'l':
    case 'd':
    case 'T':
      return 8;
    case 'D':
      return 5;
    case 'V':
      return 0;
    case 'S':
    case 'x':
    case 'A':
    case 'F':
      return 4 + buffer.readUInt32BE(at);
    default:
      throw new Error(`unknown AMQP field type "${type}" in connection.start-ok`);
  }
}

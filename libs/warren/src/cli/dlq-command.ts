import amqplib, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { redactCredentials } from '../connection/redact.js';
import { ATTEMPT_HEADER, FAILURE_HEADERS } from '../topology/failure-policy.js';
import { CliError, countOption, flag, option, type ParsedArgs, parseArgs, UsageError } from './args.js';

export const DLQ_USAGE = `warren dlq <list|peek|redrive|purge> <queue> --url <broker> [options]
  list                   one line per dead letter: message id, when, why, from which queue, attempts, error
    --limit <n>          at most n (default 1000)
  peek                   the first messages in full: properties, Warren's headers, body
    --count <n>          how many (default 10)
  redrive                moves dead letters back to the queue they came from, each confirmed by the
                         broker before it leaves the dead-letter queue (a crash duplicates, never loses)
    --count <n>          at most n messages
    --where <h>=<value>  only messages whose header h is value (repeatable; all must match)
    --reason <reason>    short for --where ${FAILURE_HEADERS.reason}=<reason>
    --to <queue>         to this queue instead of each message's own
    --batch <n>          messages in flight between broker confirms (default 100)
  purge                  deletes every message of the queue
    --yes                required: a purge cannot be undone
  --url <broker>         amqp://user:password@host:5672/vhost (default: $RABBITMQ_URL)`;

/** Headers of a dead letter that describe its failure: a redriven message starts afresh without them. */
const FAILURE_ONLY = [
  FAILURE_HEADERS.reason,
  FAILURE_HEADERS.errorName,
  FAILURE_HEADERS.errorMessage,
  FAILURE_HEADERS.attempts,
  FAILURE_HEADERS.queue,
  FAILURE_HEADERS.failedAt,
  ATTEMPT_HEADER,
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-delivery-count',
];
/** Set on each redriven message: which redrive run brought it back (`<run>/<n>`). */
export const REDRIVE_HEADER = 'x-warren-redrive';

export async function dlqCommand(argv: string[], out: (line: string) => void): Promise<number> {
  const [action, ...rest] = argv;
  const args = parseArgs(rest, ['url', 'limit', 'count', 'where', 'reason', 'to', 'batch'], ['yes']);
  if (!['list', 'peek', 'redrive', 'purge'].includes(action ?? '')) {
    throw new UsageError(`warren dlq needs one of list, peek, redrive, purge${action ? `, got "${action}"` : ''}`);
  }
  if (args.positionals.length !== 1) throw new UsageError(`warren dlq ${action} takes one <queue>`);
  const queue = args.positionals[0];
  const url = option(args, 'url') ?? process.env.RABBITMQ_URL;
  if (!url) throw new UsageError('give the broker with --url amqp://user:password@host:5672 (or set RABBITMQ_URL)');
  const connection = await connect(url);
  try {
    const where = describeUrl(url);
    const depth = await messageCount(connection, queue, where);
    switch (action) {
      case 'list':
        return await list(connection, queue, depth, countOption(args, 'limit') ?? 1000, out);
      case 'peek':
        return await peek(connection, queue, depth, countOption(args, 'count') ?? 10, out);
      case 'redrive':
        return await redrive(connection, queue, args, out, where);
      default:
        return await purge(connection, queue, depth, flag(args, 'yes'), out);
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
}

function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.hostname}:${u.port || (u.protocol === 'amqps:' ? 5671 : 5672)}${u.pathname || '/'}`;
  } catch {
    return redactCredentials(url);
  }
}

async function connect(url: string): Promise<ChannelModel> {
  try {
    return await amqplib.connect(url, { timeout: 10_000 });
  } catch (err) {
    const e = err as Error & { code?: string };
    throw new CliError(
      `cannot connect to RabbitMQ at ${describeUrl(url)}: ${redactCredentials(e.code ?? e.message)}${e.code ? ` (${redactCredentials(e.message)})` : ''}`,
    );
  }
}

/** The queue's depth; a missing queue is a clear error rather than a closed channel. */
async function messageCount(connection: ChannelModel, queue: string, where: string): Promise<number> {
  const channel = await connection.createChannel();
  channel.on('error', () => undefined);
  try {
    return (await channel.checkQueue(queue)).messageCount;
  } catch {
    throw new CliError(`no queue "${queue}" on ${where}`);
  } finally {
    await channel.close().catch(() => undefined);
  }
}

async function queueExists(connection: ChannelModel, queue: string): Promise<boolean> {
  const channel = await connection.createChannel();
  channel.on('error', () => undefined);
  try {
    await channel.checkQueue(queue);
    return true;
  } catch {
    return false;
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/**
 * Reads up to `max` messages without removing them: each is held unacknowledged (so the next get
 * gives the next one), and closing the channel gives them all back to the queue.
 */
async function browse(connection: ChannelModel, queue: string, max: number): Promise<GetMessage[]> {
  const channel = await connection.createChannel();
  const seen: GetMessage[] = [];
  try {
    while (seen.length < max) {
      const message = await channel.get(queue, { noAck: false });
      if (!message) break;
      seen.push(message);
    }
  } finally {
    await channel.close().catch(() => undefined);
  }
  return seen;
}

interface DeadLetter {
  messageId: string;
  failedAt: string;
  reason: string;
  origin?: string;
  attempts: string;
  error: string;
}

function deadLetterOf(message: GetMessage): DeadLetter {
  const h = (message.properties.headers ?? {}) as Record<string, unknown>;
  const death = Array.isArray(h['x-death']) ? (h['x-death'][0] as Record<string, unknown> | undefined) : undefined;
  const deathTime = death?.time as { value?: number } | number | undefined;
  const deathSeconds = typeof deathTime === 'object' ? deathTime?.value : deathTime;
  const error = h[FAILURE_HEADERS.errorName]
    ? `${String(h[FAILURE_HEADERS.errorName])}: ${String(h[FAILURE_HEADERS.errorMessage] ?? '')}`
    : '';
  return {
    messageId: String(message.properties.messageId ?? '-'),
    failedAt: String(h[FAILURE_HEADERS.failedAt] ?? (deathSeconds ? new Date(deathSeconds * 1000).toISOString() : '-')),
    reason: String(h[FAILURE_HEADERS.reason] ?? death?.reason ?? '-'),
    origin: originOf(h),
    attempts: String(h[FAILURE_HEADERS.attempts] ?? death?.count ?? '-'),
    error,
  };
}

/** The queue a dead letter came from: Warren's header, or the broker's own dead-lettering record. */
function originOf(headers: Record<string, unknown>): string | undefined {
  const own = headers[FAILURE_HEADERS.queue];
  if (typeof own === 'string' && own !== '') return own;
  const death = Array.isArray(headers['x-death']) ? (headers['x-death'][0] as Record<string, unknown>) : undefined;
  return typeof death?.queue === 'string' ? death.queue : undefined;
}

async function list(connection: ChannelModel, queue: string, depth: number, limit: number, out: (l: string) => void) {
  const messages = await browse(connection, queue, limit);
  out(`${depth} message(s) in "${queue}"`);
  messages.forEach((m, i) => {
    const d = deadLetterOf(m);
    out(
      `${String(i + 1).padStart(5)}  ${d.messageId}  ${d.failedAt}  ${d.reason}  from ${d.origin ?? '(unknown queue)'}  attempts ${d.attempts}${d.error ? `  ${d.error}` : ''}`,
    );
  });
  if (depth > messages.length) out(`… and ${depth - messages.length} more (--limit)`);
  return 0;
}

async function peek(connection: ChannelModel, queue: string, depth: number, count: number, out: (l: string) => void) {
  const messages = await browse(connection, queue, count);
  out(`${depth} message(s) in "${queue}"; the first ${messages.length}:`);
  messages.forEach((m, i) => {
    const d = deadLetterOf(m);
    const h = (m.properties.headers ?? {}) as Record<string, unknown>;
    out(`#${i + 1} message id ${d.messageId}`);
    out(
      `  came from queue ${d.origin ?? '(unknown)'} (exchange "${String(h[FAILURE_HEADERS.exchange] ?? m.fields.exchange)}", routing key "${String(h[FAILURE_HEADERS.routingKey] ?? m.fields.routingKey)}")`,
    );
    out(`  ${d.reason} after ${d.attempts} attempt(s) at ${d.failedAt}${d.error ? `: ${d.error}` : ''}`);
    const others = Object.fromEntries(
      Object.entries(h).filter(([k]) => !FAILURE_ONLY.includes(k) && !k.startsWith('x-warren-original')),
    );
    if (Object.keys(others).length > 0) out(`  headers ${JSON.stringify(others)}`);
    const body = m.content.toString('utf8');
    out(
      `  body (${m.properties.contentType ?? 'no content type'}, ${m.content.length} bytes): ${body.length > 1000 ? `${body.slice(0, 1000)}…` : body}`,
    );
  });
  return 0;
}

async function purge(connection: ChannelModel, queue: string, depth: number, yes: boolean, out: (l: string) => void) {
  if (!yes) throw new UsageError(`purge deletes the ${depth} message(s) of "${queue}" for good: add --yes`);
  const channel = await connection.createChannel();
  const { messageCount } = await channel.purgeQueue(queue);
  await channel.close();
  out(`purged ${messageCount} message(s) from "${queue}"`);
  return 0;
}

function filters(args: ParsedArgs): [string, string][] {
  const out: [string, string][] = [];
  for (const raw of args.options.get('where') ?? []) {
    const text = String(raw);
    const eq = text.indexOf('=');
    if (eq < 1) throw new UsageError(`--where takes header=value, got "${text}"`);
    out.push([text.slice(0, eq), text.slice(eq + 1)]);
  }
  const reason = option(args, 'reason');
  if (reason !== undefined) out.push([FAILURE_HEADERS.reason, reason]);
  return out;
}

async function redrive(
  connection: ChannelModel,
  queue: string,
  args: ParsedArgs,
  out: (l: string) => void,
  where: string,
): Promise<number> {
  const max = countOption(args, 'count') ?? Infinity;
  const batchSize = countOption(args, 'batch') ?? 100;
  const only = filters(args);
  const to = option(args, 'to');
  if (to !== undefined && !(await queueExists(connection, to))) throw new CliError(`no queue "${to}" on ${where}`);
  const run = randomUUID().slice(0, 8);
  const get: Channel = await connection.createChannel();
  const publish = await connection.createConfirmChannel();
  const returned = new Set<string>();
  publish.on('return', (m: { properties: { headers?: Record<string, unknown> } }) => {
    returned.add(String(m.properties.headers?.[REDRIVE_HEADER]));
  });
  const exists = new Map<string, boolean>();
  let moved = 0;
  let sent = 0;
  let skipped = 0;
  let noOrigin = 0;
  const unroutable = new Set<string>();
  const missing = new Set<string>();
  try {
    for (;;) {
      const batch: { message: GetMessage; tag: string; origin: string }[] = [];
      let empty = false;
      while (batch.length < batchSize && moved + batch.length < max) {
        const message = await get.get(queue, { noAck: false });
        if (!message) {
          empty = true;
          break;
        }
        const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
        // What is not moved stays unacknowledged until the end, then goes back to the queue as it was.
        if (!only.every(([k, v]) => String(headers[k]) === v)) {
          skipped++;
          continue;
        }
        const origin = to ?? originOf(headers);
        if (!origin) {
          noOrigin++;
          continue;
        }
        if (!exists.has(origin)) exists.set(origin, await queueExists(connection, origin));
        if (!exists.get(origin)) {
          missing.add(origin);
          continue;
        }
        const tag = `${run}/${++sent}`;
        const clean = Object.fromEntries(Object.entries(headers).filter(([k]) => !FAILURE_ONLY.includes(k)));
        const p = message.properties;
        publish.publish('', origin, message.content, {
          mandatory: true,
          persistent: p.deliveryMode !== 1,
          contentType: p.contentType,
          contentEncoding: p.contentEncoding,
          headers: { ...clean, [REDRIVE_HEADER]: tag },
          correlationId: p.correlationId,
          replyTo: p.replyTo,
          messageId: p.messageId,
          timestamp: p.timestamp,
          type: p.type,
          appId: p.appId,
          priority: p.priority,
        });
        batch.push({ message, tag, origin });
      }
      if (batch.length > 0) {
        // Every copy is on its queue before any original leaves the dead-letter queue.
        await publish.waitForConfirms();
        for (const { message, tag, origin } of batch) {
          if (returned.has(tag)) {
            unroutable.add(origin);
            continue;
          }
          get.ack(message);
          moved++;
        }
        out(`redriven ${moved}`);
      }
      if (empty || moved >= max || batch.length === 0) break;
    }
  } finally {
    await publish.close().catch(() => undefined);
    await get.close().catch(() => undefined);
  }
  out(`moved ${moved} message(s) from "${queue}" back to ${to ? `"${to}"` : 'the queues they came from'}`);
  const left: string[] = [];
  if (skipped > 0) left.push(`${skipped} not matching the filter`);
  if (noOrigin > 0) left.push(`${noOrigin} that name no queue they came from (give one with --to)`);
  if (missing.size > 0) left.push(`those of queues that do not exist: ${[...missing].join(', ')}`);
  if (unroutable.size > 0) left.push(`those the broker could not route to ${[...unroutable].join(', ')}`);
  if (left.length > 0) out(`left in "${queue}": ${left.join('; ')}`);
  return noOrigin + missing.size + unroutable.size > 0 ? 1 : 0;
}

import amqplib, { type ChannelModel, type GetMessage } from 'amqplib';
import { randomBytes } from 'node:crypto';

/** The broker the global setup provided; a missing one is a failure, not a skip. */
export function brokerUrl(): string {
  const url = process.env.RABBITMQ_URL;
  if (!url) throw new Error('RABBITMQ_URL is not set: the jest global setup did not provide a broker');
  return url;
}

/** A name no other test uses, so suites never see each other's messages. */
export function unique(prefix: string): string {
  return `${prefix}.${randomBytes(4).toString('hex')}`;
}

/** Calls the management HTTP API (the global setup starts the plugin). */
export async function management<T = unknown>(path: string, init: RequestInit = {}): Promise<T> {
  const base = process.env.RABBITMQ_MANAGEMENT_URL;
  if (!base) throw new Error('RABBITMQ_MANAGEMENT_URL is not set: the broker has no management API');
  const url = new URL(base);
  const auth = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString(
    'base64',
  );
  url.username = '';
  url.password = '';
  const deadline = Date.now() + 20_000;
  for (;;) {
    const response = await fetch(new URL(path, url), {
      ...init,
      headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json', ...init.headers },
    }).catch((err: Error) => err);
    // The plugin may still be starting right after the broker accepts AMQP connections.
    if (response instanceof Error || response.status === 503) {
      if (Date.now() > deadline) throw response instanceof Error ? response : new Error(`${path}: 503`);
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    if (!response.ok)
      throw new Error(`management API ${init.method ?? 'GET'} ${path}: ${response.status} ${await response.text()}`);
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

export interface BrokerBinding {
  source: string;
  destination: string;
  destination_type: string;
  routing_key: string;
  arguments: Record<string, unknown>;
}

/** Bindings on the broker whose source is `exchange`, as [queue, routingKey] pairs, sorted. */
export async function bindingsFrom(exchange: string): Promise<[string, string][]> {
  const all = await management<BrokerBinding[]>(`/api/exchanges/%2F/${encodeURIComponent(exchange)}/bindings/source`);
  return all.map((b) => [b.destination, b.routing_key] as [string, string]).sort();
}

/** Deletes exchanges and queues a test declared (missing ones are fine). */
export async function deleteTopology(names: { exchanges?: string[]; queues?: string[] }): Promise<void> {
  const connection = await amqplib.connect(brokerUrl());
  try {
    for (const q of names.queues ?? []) {
      const ch = await connection.createChannel();
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
    for (const e of names.exchanges ?? []) {
      const ch = await connection.createChannel();
      await ch.deleteExchange(e).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await connection.close();
  }
}

/** Resolves when `predicate` holds, polling; rejects after `timeoutMs` with `what` in the message. */
export async function waitUntil(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Takes the next message off `queue` (a dead-letter queue, an outbox) on a channel of its own, waiting for one. */
export async function nextMessage(connection: ChannelModel, queue: string): Promise<GetMessage> {
  const ch = await connection.createChannel();
  try {
    let msg: GetMessage | false = false;
    await waitUntil(`a message on ${queue}`, async () => (msg = await ch.get(queue, { noAck: true })) !== false);
    return msg as unknown as GetMessage;
  } finally {
    await ch.close();
  }
}

/** How many messages a queue holds now (a passive declare: exact, unlike the management API's sampled counts). */
export async function queueDepth(connection: ChannelModel, queue: string): Promise<number> {
  const ch = await connection.createChannel();
  try {
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await ch.close();
  }
}

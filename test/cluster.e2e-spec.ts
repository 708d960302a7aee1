import amqplib from 'amqplib';
import { unique, waitUntil } from './support/broker.js';
import { useSharedCluster } from './support/cluster.js';

// The test cluster itself, against its real nodes. Every wait is bounded, and the suite hands the
// shared cluster back with its three nodes running, for the suites after it.

const QUORUM = unique('e2e.cluster-quorum');
/** The node the kill test killed, for the test that brings it back. */
let killed: number | undefined;

const cluster = useSharedCluster({ queues: [QUORUM] });

/** GET on node `i`'s own management API, with the credentials its managementUrl carries. */
async function api<T>(i: number, path: string): Promise<T> {
  const base = new URL(cluster().nodes[i].managementUrl);
  const auth = Buffer.from(`${base.username}:${base.password}`).toString('base64');
  const response = await fetch(`http://${base.host}${path}`, { headers: { authorization: `Basic ${auth}` } });
  if (!response.ok) throw new Error(`GET ${path} on node ${i}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** The cluster members node `i` sees running, sorted. */
async function runningSeenBy(i: number): Promise<string[]> {
  const nodes = await api<{ name: string; running: boolean }[]>(i, '/api/nodes');
  return nodes
    .filter((n) => n.running)
    .map((n) => n.name)
    .sort();
}

function names(indexes: number[]): string[] {
  return indexes.map((i) => cluster().nodes[i].name).sort();
}

async function refusesAmqp(i: number): Promise<boolean> {
  try {
    const connection = await amqplib.connect(cluster().urls[i]);
    await connection.close();
    return false;
  } catch {
    return true;
  }
}

interface QueueInfo {
  type: string;
  node?: string;
  leader?: string;
  members?: string[];
  online?: string[];
}

/** Whether the quorum queue has `count` members online, as node `via` reports it. */
async function membersOnline(via: number, count: number): Promise<boolean> {
  const info = await api<QueueInfo>(via, `/api/queues/%2F/${encodeURIComponent(QUORUM)}`);
  return (info.online ?? []).length === count;
}

describe('startRabbitMQCluster({ nodes: 3 })', () => {
  it('is one cluster of three running nodes, each seeing all three and accepting AMQP connections', async () => {
    expect(cluster().nodes).toHaveLength(3);
    expect(cluster().urls).toEqual(cluster().nodes.map((n) => n.url));
    expect(new Set(cluster().urls).size).toBe(3);
    for (const url of cluster().urls) expect(new URL(url).hostname).toBe('127.0.0.1');
    // Each node lists all three running: one cluster, not three single-node ones.
    for (let i = 0; i < 3; i++) expect(await runningSeenBy(i)).toEqual(names([0, 1, 2]));
    for (let i = 0; i < 3; i++) expect(await refusesAmqp(i)).toBe(false);
  });

  it('shows a quorum queue declared through one node on the others; nodeOf names its leader', async () => {
    const connection = await amqplib.connect(cluster().urls[1]);
    const channel = await connection.createChannel();
    // client-local: the leader starts on the node the declaring connection is on, a known answer.
    await channel.assertQueue(QUORUM, {
      durable: true,
      arguments: { 'x-queue-type': 'quorum', 'x-queue-leader-locator': 'client-local' },
    });
    await connection.close();
    for (const i of [0, 2]) {
      const other = await amqplib.connect(cluster().urls[i]);
      const passive = await other.createChannel();
      await expect(passive.checkQueue(QUORUM)).resolves.toMatchObject({ queue: QUORUM, messageCount: 0 });
      await other.close();
    }
    const info = await api<QueueInfo>(2, `/api/queues/%2F/${encodeURIComponent(QUORUM)}`);
    expect(info.type).toBe('quorum');
    expect([...(info.members ?? [])].sort()).toEqual(names([0, 1, 2]));
    expect(await cluster().nodeOf(QUORUM)).toBe(1);
  });

  it('nodeOf names the node each classic queue lives on, and says so when a queue does not exist', async () => {
    for (let i = 0; i < 3; i++) {
      const connection = await amqplib.connect(cluster().urls[i]);
      const channel = await connection.createChannel();
      // A classic queue lives on the node of the connection that declared it.
      const { queue } = await channel.assertQueue('', { exclusive: true });
      expect(await cluster().nodeOf(queue)).toBe(i);
      await connection.close();
    }
    const missing = unique('e2e.cluster-missing');
    await expect(cluster().nodeOf(missing)).rejects.toThrow(`nodeOf("${missing}"): no queue "${missing}" in vhost "/"`);
  });

  it('kill(leader): a surviving node leads the quorum queue, and a message confirmed before the kill is consumable', async () => {
    const leader = await cluster().nodeOf(QUORUM);
    const survivors = [0, 1, 2].filter((i) => i !== leader);
    const body = unique('before-the-kill');
    const publisher = await amqplib.connect(cluster().urls[survivors[0]]);
    const confirms = await publisher.createConfirmChannel();
    confirms.sendToQueue(QUORUM, Buffer.from(body), { persistent: true });
    await confirms.waitForConfirms();
    await publisher.close();

    await cluster().kill(leader);
    killed = leader;
    expect(await refusesAmqp(leader)).toBe(true);
    await waitUntil(
      `node ${survivors[0]} to see only the survivors running`,
      async () => JSON.stringify(await runningSeenBy(survivors[0])) === JSON.stringify(names(survivors)),
      30_000,
    );
    let newLeader = leader;
    await waitUntil(
      'a new leader for the quorum queue',
      async () => (newLeader = await cluster().nodeOf(QUORUM)) !== leader,
      30_000,
    );
    expect(survivors).toContain(newLeader);

    const consumer = await amqplib.connect(cluster().urls[survivors[1]]);
    let got: string | undefined;
    // The queue answers once its new leader has taken over; a get meanwhile may fail its channel.
    await waitUntil(
      'the message confirmed before the kill',
      async () => {
        const channel = await consumer.createChannel().catch(() => undefined);
        const message = await channel?.get(QUORUM, { noAck: true }).catch(() => false as const);
        await channel?.close().catch(() => undefined);
        if (message) got = message.content.toString();
        return got !== undefined;
      },
      30_000,
    );
    await consumer.close();
    expect(got).toBe(body);
  }, 120_000);

  it('start(i) brings a killed node back into the cluster, with its quorum queue member online again', async () => {
    if (killed === undefined) throw new Error('the kill test did not kill a node');
    expect(await refusesAmqp(killed)).toBe(true);
    await cluster().start(killed);
    for (let i = 0; i < 3; i++) expect(await runningSeenBy(i)).toEqual(names([0, 1, 2]));
    expect(await refusesAmqp(killed)).toBe(false);
    await waitUntil('the quorum queue to have its three members online', () => membersOnline(killed!, 3), 30_000);
  }, 120_000);

  it('stop(i) stops a node gracefully, keeping its data; start(i) brings it back', async () => {
    await cluster().stop(2);
    expect(await refusesAmqp(2)).toBe(true);
    await waitUntil(
      'node 0 to see node 2 stopped',
      async () => JSON.stringify(await runningSeenBy(0)) === JSON.stringify(names([0, 1])),
      30_000,
    );
    await cluster().start(2);
    for (let i = 0; i < 3; i++) expect(await runningSeenBy(i)).toEqual(names([0, 1, 2]));
    // The node came back with its data dir: its member of the quorum queue runs again.
    await waitUntil('the quorum queue to have its three members online', () => membersOnline(2, 3), 30_000);
  }, 120_000);
});

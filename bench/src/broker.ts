// The driver's view of the broker: its version, and the clean-up between trials. Every trial's
// names start with its tag; after the trial's process has exited, the driver waits for its
// connections to be gone, counts what its queue still holds, and deletes every queue and exchange
// the trial made, and Warren's shared retry queues and delay ladder, so each trial starts from the
// same clean broker.
import amqplib, { type ChannelModel } from 'amqplib';
import { setTimeout as sleep } from 'node:timers/promises';
import { handlerQueue, type BrokerSpec, type Scenario } from './harness.js';
import { DEFAULT_RETRY_DELAYS, retryQueueName } from 'nestjs-warren';
import { ManagementApi } from './management.js';
import { isWarrenShared } from './warren-shared.js';

/** Every queue and exchange of a trial is named `bench.<tag>.<something>`. */
export function namePrefix(tag: string): string {
  return `bench.${tag}`;
}

/** What a trial's spec takes from its scenario; the boot's handlers and the store's knobs are 0 unless it sets them. */
export type TrialSettings = Pick<BrokerSpec, 'prefetch' | 'publishWindow' | 'warmup' | 'timeoutMs'> &
  Partial<Pick<BrokerSpec, 'routingKey' | 'handlers' | 'storePool' | 'storeCallMs'>>;

/** A trial's spec: every name under `namePrefix(tag)`, which the clean-up deletes after it. */
export function trialSpec(url: string, tag: string, scenario: Scenario, settings: TrialSettings): BrokerSpec {
  const prefix = namePrefix(tag);
  return {
    url,
    tag,
    scenario,
    exchange: `${prefix}.x`,
    queue: `${prefix}.q`,
    routingKey: 'bench.event',
    rpcQueue: `${prefix}.rpc`,
    handlers: 0,
    storePool: 0,
    storeCallMs: 0,
    ...settings,
  };
}

/** The retry queues (and their exchanges, of the same names) of Warren's default failure policy, both types. */
const DEFAULT_WARREN_SHARED = DEFAULT_RETRY_DELAYS.flatMap((delay) => [
  retryQueueName(delay),
  retryQueueName(delay, 'quorum'),
]);

export interface BrokerInfo {
  product: string;
  version: string;
  erlang?: string;
  managementApi: boolean;
}

export interface Cleanup {
  /** Messages left in the pub/sub queue once the system had closed (unacked ones come back): must be 0. */
  leftInQueue: number;
  /** Objects with the trial's tag that the clean-up found besides the expected ones. */
  residue: string[];
  /** Connections of the trial still open when the clean-up gave up waiting for them. */
  lingeringConnections: number;
}

export class BrokerAdmin {
  private constructor(
    private readonly connection: ChannelModel,
    private readonly management?: ManagementApi,
  ) {}

  static async connect(url: string, managementUrl: string | undefined): Promise<BrokerAdmin> {
    const connection = await amqplib.connect(url, { clientProperties: { connection_name: 'bench:driver' } });
    return new BrokerAdmin(connection, managementUrl ? new ManagementApi(managementUrl) : undefined);
  }

  async info(): Promise<BrokerInfo> {
    const props = (this.connection.connection as unknown as { serverProperties?: Record<string, unknown> })
      .serverProperties;
    const info: BrokerInfo = {
      product: String(props?.product ?? 'unknown'),
      version: String(props?.version ?? 'unknown'),
      managementApi: this.management !== undefined,
    };
    if (this.management) {
      const overview = await this.management.get<{ erlang_version?: string }>('/api/overview').catch(() => undefined);
      info.erlang = overview?.erlang_version;
    }
    return info;
  }

  async cleanup(spec: BrokerSpec): Promise<Cleanup> {
    const lingeringConnections = await this.waitForConnectionsGone(spec.tag);
    let leftInQueue = 0;
    if (spec.scenario === 'pubsub' || spec.scenario === 'store') {
      leftInQueue = await this.withChannel(async (ch) => (await ch.checkQueue(spec.queue)).messageCount).catch(() => 0);
    }
    const own = [spec.queue, spec.rpcQueue];
    for (let i = 0; i < spec.handlers; i++) own.push(handlerQueue(spec, i));
    // Warren declares a dead-letter queue beside each named queue it consumes (its default failure
    // policy): part of the system under test, so expected here, not residue.
    const queues = [...own, ...own.map((q) => `${q}.dlq`)];
    // Warren's retry queues and delay ladder, which any Warren app declares for the vhost: listed
    // where the management API can, else the default failure policy's retry queues by name.
    const shared = this.management
      ? await this.sharedNames()
      : { queues: DEFAULT_WARREN_SHARED, exchanges: DEFAULT_WARREN_SHARED };
    // Deleting a queue or exchange that does not exist is not an error in RabbitMQ: one channel does all.
    await this.withChannel(async (ch) => {
      for (const queue of [...queues, ...shared.queues]) await ch.deleteQueue(queue);
      for (const exchange of [spec.exchange, ...shared.exchanges]) await ch.deleteExchange(exchange);
    }).catch(() => undefined);
    const residue: string[] = [];
    if (this.management) {
      const prefix = `${namePrefix(spec.tag)}.`;
      for (const kind of ['queues', 'exchanges'] as const) {
        const all = await this.management.get<{ name: string }[]>(`/api/${kind}/%2F?columns=name`).catch(() => []);
        for (const { name } of all) {
          if (!name.startsWith(prefix)) continue;
          residue.push(`${kind.slice(0, -1)} ${name}`);
          await this.management.delete(`/api/${kind}/%2F/${encodeURIComponent(name)}`).catch(() => undefined);
        }
      }
    }
    return { leftInQueue, residue, lingeringConnections };
  }

  /** Warren's shared queues and exchanges on the broker now (see warren-shared.ts). */
  private async sharedNames(): Promise<{ queues: string[]; exchanges: string[] }> {
    const [queues, exchanges] = await Promise.all(
      (['queues', 'exchanges'] as const).map((kind) =>
        this.management!.names(kind).then(
          (names) => names.filter(isWarrenShared),
          () => [],
        ),
      ),
    );
    return { queues, exchanges };
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }

  /** Waits (up to 10 s) until the broker lists no connection named after the trial. */
  private async waitForConnectionsGone(tag: string): Promise<number> {
    if (!this.management) {
      await sleep(500);
      return 0;
    }
    const deadline = Date.now() + 10_000;
    for (;;) {
      const connections = await this.management
        .get<{ client_properties?: { connection_name?: string } }[]>('/api/connections?columns=client_properties')
        .catch(() => []);
      const open = connections.filter((c) => c.client_properties?.connection_name?.startsWith(`bench:${tag}`)).length;
      if (open === 0 || Date.now() > deadline) return open;
      await sleep(100);
    }
  }

  /** A channel per operation: a failed one (e.g. 404) closes its channel, not the connection. */
  private async withChannel<T>(op: (ch: amqplib.Channel) => Promise<T>): Promise<T> {
    const ch = await this.connection.createChannel();
    ch.on('error', () => undefined);
    try {
      return await op(ch);
    } finally {
      await ch.close().catch(() => undefined);
    }
  }
}

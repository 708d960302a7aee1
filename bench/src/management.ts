// The management HTTP API of a broker, for the driver's clean-up between trials and the scenarios that
// read its memory or list and delete its queues. Its URL may carry the credentials; fetch does not take them in the URL.
export class ManagementApi {
  private readonly base: URL;
  private readonly auth: string;

  constructor(url: string) {
    this.base = new URL(url);
    this.auth = `Basic ${Buffer.from(`${decodeURIComponent(this.base.username)}:${decodeURIComponent(this.base.password)}`).toString('base64')}`;
    this.base.username = '';
    this.base.password = '';
  }

  async get<T>(path: string): Promise<T> {
    const response = await fetch(new URL(path, this.base), { headers: { authorization: this.auth } });
    if (!response.ok) throw new Error(`management API GET ${path}: ${response.status}`);
    return (await response.json()) as T;
  }

  async delete(path: string): Promise<void> {
    const response = await fetch(new URL(path, this.base), { method: 'DELETE', headers: { authorization: this.auth } });
    if (!response.ok && response.status !== 404) throw new Error(`management API DELETE ${path}: ${response.status}`);
  }

  /** Names of the vhost's queues (or exchanges). */
  async names(kind: 'queues' | 'exchanges', vhost = '/'): Promise<string[]> {
    const all = await this.get<{ name: string }[]>(`/api/${kind}/${encodeURIComponent(vhost)}?columns=name`);
    return all.map((q) => q.name);
  }

  /** Deletes every queue and exchange of the vhost whose name starts with one of `prefixes`. */
  async deleteByPrefix(prefixes: string[], vhost = '/'): Promise<string[]> {
    const deleted: string[] = [];
    for (const kind of ['queues', 'exchanges'] as const) {
      for (const name of await this.names(kind, vhost)) {
        if (!prefixes.some((p) => name.startsWith(p))) continue;
        await this.delete(`/api/${kind}/${encodeURIComponent(vhost)}/${encodeURIComponent(name)}`);
        deleted.push(name);
      }
    }
    return deleted;
  }

  /** The broker's memory as its memory alarm sees it (`mem_used`), and the parts that hold messages. */
  async memory(): Promise<BrokerMemory> {
    const { node } = await this.get<{ node: string }>('/api/overview');
    const info = await this.get<{ mem_used: number; memory?: Record<string, unknown> }>(
      `/api/nodes/${encodeURIComponent(node)}?memory=true`,
    );
    const part = (key: string) => (typeof info.memory?.[key] === 'number' ? (info.memory[key] as number) : NaN);
    return {
      usedBytes: typeof info.mem_used === 'number' ? info.mem_used : NaN,
      queueProcsBytes: part('queue_procs'),
      binaryBytes: part('binary'),
    };
  }
}

export interface BrokerMemory {
  /** `mem_used`: what the memory alarm compares with its watermark. */
  usedBytes: number;
  /** The memory breakdown's `queue_procs` (the queues' processes, their message indexes) and `binary` (message bodies). */
  queueProcsBytes: number;
  binaryBytes: number;
}

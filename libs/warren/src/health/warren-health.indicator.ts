import { Injectable } from '@nestjs/common';
import { type ConnectionRole, WarrenConnection } from '../connection/warren-connection.js';
import { ConsumerLifecycle } from '../registry/consumer-lifecycle.js';

/** One of Warren's two connections, as the indicator reports it. */
export interface WarrenConnectionHealth {
  connected: boolean;
  /**
   * While connected: the node it is on, as the URL of `urls` it connected to without credentials
   * (`amqp://10.0.0.2:5672/`). After a node loss it names the node the connection moved to.
   */
  node?: string;
  /** The broker stopped reading from it (a memory or disk alarm): publishes on it stall. */
  blocked: boolean;
  /** How many channels Warren keeps on it (amqp-connection-manager reopens them after a reconnect). */
  channels: number;
}

/** What `WarrenHealthIndicator` reports under its key; @nestjs/terminus shows it as it is. */
export interface WarrenHealthDetails {
  status: 'up' | 'down';
  connections: Record<ConnectionRole, WarrenConnectionHealth>;
  /** Paused consumers (`ConsumerHandle.pause()`) are not failures; inactive ones are. */
  consumers: { total: number; active: number; paused: string[]; inactive: string[] };
  /** Warren's boot has declared the whole topology and started every consumer, and shutdown has not begun. */
  started: boolean;
}

/** The @nestjs/terminus `HealthIndicatorResult` shape: `{ [key]: { status, ...details } }`. */
export type WarrenHealthResult<Key extends string = string> = Record<Key, WarrenHealthDetails>;

/**
 * Kubernetes-style probes for @nestjs/terminus (or any probe), without depending on terminus:
 * only its result shape.
 *
 * - `readiness()` is `down` while the app cannot do its messaging work: before Warren's boot has
 *   declared the topology and started the consumers, while a connection is lost or blocked by the
 *   broker, while a consumer is inactive, and from the start of shutdown. A load balancer then
 *   sends the pod no traffic until it is back.
 * - `liveness()` is `up` whatever the broker does: restarting a pod cannot bring a broker back,
 *   and a liveness probe that failed during a broker outage would restart every pod at once.
 *   It reports the same details, for the operator.
 *
 * ```ts
 * @Get('health/ready') @HealthCheck()
 * ready() { return this.health.check([() => this.warren.readiness('rabbitmq')]); }
 * ```
 */
@Injectable()
export class WarrenHealthIndicator {
  constructor(
    private readonly connection: WarrenConnection,
    private readonly consumers: ConsumerLifecycle,
  ) {}

  /** Whether `readiness()` is `up`. */
  get isReady(): boolean {
    return this.details().status === 'up';
  }

  /**
   * Readiness: `up` when the boot has declared the topology and started every consumer, both
   * connections are up and unblocked, and every consumer consumes (or is paused on purpose).
   * Never throws: terminus reads `status: 'down'` as a failure (503).
   */
  readiness<Key extends string = 'rabbitmq'>(key: Key = 'rabbitmq' as Key): WarrenHealthResult<Key> {
    return { [key]: this.details() } as WarrenHealthResult<Key>;
  }

  /** Liveness: always `up` (the broker's state cannot be mended by a restart), with the readiness details. */
  liveness<Key extends string = 'rabbitmq'>(key: Key = 'rabbitmq' as Key): WarrenHealthResult<Key> {
    return { [key]: { ...this.details(), status: 'up' } } as WarrenHealthResult<Key>;
  }

  /** @deprecated The broker's connectivity is readiness, not liveness: use `readiness()` (the same result). */
  check<Key extends string = 'rabbitmq'>(key: Key = 'rabbitmq' as Key): WarrenHealthResult<Key> {
    return this.readiness(key);
  }

  private details(): WarrenHealthDetails {
    const connections = { consume: this.connection.stats('consume'), publish: this.connection.stats('publish') };
    const consumers = this.consumers.list();
    const paused = consumers.filter((c) => c.paused).map((c) => c.label);
    const inactive = consumers.filter((c) => !c.active && !c.paused).map((c) => c.label);
    const started = this.consumers.ready;
    const linked = Object.values(connections).every((c) => c.connected && !c.blocked);
    return {
      status: started && linked && inactive.length === 0 ? 'up' : 'down',
      connections,
      consumers: {
        total: consumers.length,
        active: consumers.length - inactive.length - paused.length,
        paused,
        inactive,
      },
      started,
    };
  }
}

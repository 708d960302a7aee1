import { Injectable } from '@nestjs/common';
import { WarrenConnection } from '../connection/warren-connection.js';
import { ConsumerLifecycle } from '../registry/consumer-lifecycle.js';

/** What `WarrenHealthIndicator` reports under its key; @nestjs/terminus shows it as it is. */
export interface WarrenHealthDetails {
  status: 'up' | 'down';
  /** Each of Warren's two connections, and how many channels Warren keeps on it. */
  connections: Record<'consume' | 'publish', { connected: boolean; channels: number }>;
  /** Paused consumers (`ConsumerHandle.pause()`) are not failures; inactive ones are. */
  consumers: { total: number; active: number; paused: string[]; inactive: string[] };
  /** Topology declared and consumers started (see `isReady`). */
  ready: boolean;
}

/** The @nestjs/terminus `HealthIndicatorResult` shape: `{ [key]: { status, ...details } }`. */
export type WarrenHealthResult<Key extends string = string> = Record<Key, WarrenHealthDetails>;

/**
 * Health and readiness for @nestjs/terminus (or any probe): no dependency on terminus, only its
 * result shape.
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.warren.check('rabbitmq')]); }
 * ```
 */
@Injectable()
export class WarrenHealthIndicator {
  constructor(
    private readonly connection: WarrenConnection,
    private readonly consumers: ConsumerLifecycle,
  ) {}

  /**
   * Readiness: true only once the whole topology has been declared and every consumer started
   * (the end of Warren's boot), and false again from the start of shutdown.
   */
  get isReady(): boolean {
    return this.consumers.ready;
  }

  /**
   * Liveness: `up` when both connections are up and every consumer is consuming (or paused on
   * purpose). Never throws:
   * terminus reads `status: 'down'` as a failure. Readiness is separate (`readiness()`).
   */
  check<Key extends string = 'rabbitmq'>(key: Key = 'rabbitmq' as Key): WarrenHealthResult<Key> {
    const connections = { consume: this.connection.stats('consume'), publish: this.connection.stats('publish') };
    const consumers = this.consumers.list();
    const paused = consumers.filter((c) => c.paused).map((c) => c.label);
    const inactive = consumers.filter((c) => !c.active && !c.paused).map((c) => c.label);
    const ready = this.isReady;
    const up = connections.consume.connected && connections.publish.connected && inactive.length === 0;
    const details: WarrenHealthDetails = {
      status: up ? 'up' : 'down',
      connections,
      consumers: {
        total: consumers.length,
        active: consumers.length - inactive.length - paused.length,
        paused,
        inactive,
      },
      ready,
    };
    return { [key]: details } as WarrenHealthResult<Key>;
  }

  /** Readiness in the same shape: `up` exactly when `isReady`. */
  readiness<Key extends string = 'rabbitmq'>(key: Key = 'rabbitmq' as Key): Record<Key, { status: 'up' | 'down' }> {
    return { [key]: { status: this.isReady ? 'up' : 'down' } } as Record<Key, { status: 'up' | 'down' }>;
  }
}

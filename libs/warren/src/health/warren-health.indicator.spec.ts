import type { ConnectionRole, WarrenConnection } from '../connection/warren-connection.js';
import type { ConsumerLifecycle } from '../registry/consumer-lifecycle.js';
import { WarrenHealthIndicator } from './warren-health.indicator.js';

// The probes' rule, case by case: the states a real broker reaches only with effort (a memory
// alarm's `blocked`) are set by hand here. test/health.e2e-spec.ts runs the outage for real.

interface State {
  connected: Record<ConnectionRole, boolean>;
  blocked: Record<ConnectionRole, boolean>;
  started: boolean;
  consumers: { label: string; active: boolean; paused: boolean }[];
}

function indicatorOver(state: State): WarrenHealthIndicator {
  const connection = {
    stats: (role: ConnectionRole) => ({
      connected: state.connected[role],
      ...(state.connected[role] ? { node: `amqp://10.0.0.${role === 'consume' ? 1 : 2}:5672/` } : {}),
      blocked: state.blocked[role],
      channels: 1,
    }),
  } as unknown as WarrenConnection;
  const lifecycle = {
    get ready() {
      return state.started;
    },
    list: () => state.consumers,
  } as unknown as ConsumerLifecycle;
  return new WarrenHealthIndicator(connection, lifecycle);
}

function healthy(): State {
  return {
    connected: { consume: true, publish: true },
    blocked: { consume: false, publish: false },
    started: true,
    consumers: [{ label: 'Orders.onPlaced', active: true, paused: false }],
  };
}

describe('WarrenHealthIndicator', () => {
  it('is ready when started, connected, unblocked and consuming', () => {
    const indicator = indicatorOver(healthy());
    expect(indicator.isReady).toBe(true);
    expect(indicator.readiness('mq')).toEqual({
      mq: {
        status: 'up',
        started: true,
        connections: {
          consume: { connected: true, node: 'amqp://10.0.0.1:5672/', blocked: false, channels: 1 },
          publish: { connected: true, node: 'amqp://10.0.0.2:5672/', blocked: false, channels: 1 },
        },
        consumers: { total: 1, active: 1, paused: [], inactive: [] },
      },
    });
  });

  it.each<[string, (s: State) => void]>([
    ['before the boot has started the consumers (or after shutdown began)', (s) => (s.started = false)],
    ['while the consume connection is lost', (s) => (s.connected.consume = false)],
    ['while the publish connection is lost', (s) => (s.connected.publish = false)],
    ['while the broker blocks the publish connection (resource alarm)', (s) => (s.blocked.publish = true)],
    ['while the broker blocks the consume connection', (s) => (s.blocked.consume = true)],
    ['while a consumer is inactive', (s) => (s.consumers[0].active = false)],
  ])('is not ready %s, and still live', (_, breakIt) => {
    const state = healthy();
    breakIt(state);
    const indicator = indicatorOver(state);
    expect(indicator.isReady).toBe(false);
    expect(indicator.readiness().rabbitmq.status).toBe('down');
    expect(indicator.liveness().rabbitmq.status).toBe('up');
    // Liveness tells the operator what it sees all the same.
    expect({ ...indicator.liveness().rabbitmq, status: 'down' }).toEqual(indicator.readiness().rabbitmq);
  });

  it('counts a consumer paused on purpose as no failure', () => {
    const state = healthy();
    state.consumers[0] = { label: 'Orders.onPlaced', active: false, paused: true };
    expect(indicatorOver(state).readiness().rabbitmq).toMatchObject({
      status: 'up',
      consumers: { total: 1, active: 0, paused: ['Orders.onPlaced'], inactive: [] },
    });
  });
});

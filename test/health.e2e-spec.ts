import { Injectable, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test, type TestingModule } from '@nestjs/testing';
import amqplib from 'amqplib';
import { Consume, ConsumerRegistry, TopologyError, WarrenHealthIndicator, WarrenModule } from 'nestjs-warren';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';
import { logged } from './support/logs.js';
import { TcpProxy } from './support/tcp-proxy.js';

const QUEUE = unique('e2e.health.work');
const CONFLICTING = unique('e2e.health.conflicting');

@Injectable()
class Worker {
  @Consume(QUEUE, { durable: false, failure: 'drop' })
  work() {}
}

@Injectable()
class Conflicting {
  // The broker holds this queue as durable: declaring it non-durable fails the boot.
  @Consume(CONFLICTING, { durable: false, failure: 'drop' })
  work() {}
}

async function compile(provider: typeof Worker, connectionName: string, url = brokerUrl()): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      WarrenModule.forRoot({ url, connectionName, reconnectDelayMs: 500, connectTimeoutMs: 10_000 }),
      TerminusModule,
    ],
    providers: [provider],
  }).compile();
  moduleRef.useLogger(['error']);
  return moduleRef;
}

afterAll(() => deleteTopology({ queues: [QUEUE, CONFLICTING] }));

describe('WarrenHealthIndicator', () => {
  it('is ready only once the topology is declared and the consumers started, until shutdown', async () => {
    const moduleRef = await compile(Worker, unique('e2e-health-ready'));
    const indicator = moduleRef.get(WarrenHealthIndicator);
    expect(indicator.isReady).toBe(false);
    expect(indicator.readiness()).toMatchObject({ rabbitmq: { status: 'down', started: false } });

    await moduleRef.init();
    expect(indicator.isReady).toBe(true);
    expect(indicator.readiness('warren')).toMatchObject({ warren: { status: 'up', started: true } });
    // Ready means consuming: the queue exists and has its consumer.
    const connection = await amqplib.connect(brokerUrl());
    const { consumerCount } = await (await connection.createChannel()).checkQueue(QUEUE);
    await connection.close();
    expect(consumerCount).toBe(1);

    await moduleRef.close();
    expect(indicator.isReady).toBe(false);
    expect(indicator.readiness().rabbitmq.started).toBe(false);
  });

  it('is never ready when the boot fails declaring the topology', async () => {
    const connection = await amqplib.connect(brokerUrl());
    await (await connection.createChannel()).assertQueue(CONFLICTING, { durable: true });
    await connection.close();
    const moduleRef = await compile(Conflicting, unique('e2e-health-refused'));
    const indicator = moduleRef.get(WarrenHealthIndicator);
    await expect(moduleRef.init()).rejects.toBeInstanceOf(TopologyError);
    expect(indicator.isReady).toBe(false);
    await moduleRef.close();
  });

  it('through @nestjs/terminus: readiness goes down during a broker outage and comes back, liveness stays up', async () => {
    const proxy = TcpProxy.forUrl(brokerUrl());
    await proxy.start();
    const moduleRef = await compile(Worker, unique('e2e-health-outage'), proxy.url(brokerUrl()));
    try {
      await moduleRef.init();
      const indicator = moduleRef.get(WarrenHealthIndicator);
      const health = moduleRef.get(HealthCheckService);
      const ready = () => health.check([() => indicator.readiness('rabbitmq')]);
      const live = () => health.check([() => indicator.liveness('rabbitmq')]);

      await expect(ready()).resolves.toMatchObject({
        status: 'ok',
        info: {
          rabbitmq: {
            status: 'up',
            started: true,
            connections: {
              consume: { connected: true, blocked: false },
              publish: { connected: true, blocked: false },
            },
            consumers: { total: 1, active: 1, paused: [], inactive: [] },
          },
        },
      });
      await expect(live()).resolves.toMatchObject({ status: 'ok' });

      // A consumer paused on purpose is not a failure.
      const [consumer] = moduleRef.get(ConsumerRegistry).list();
      await consumer.pause();
      expect(indicator.readiness().rabbitmq).toMatchObject({
        status: 'up',
        consumers: { active: 0, paused: ['Worker.work'], inactive: [] },
      });
      await consumer.resume();

      // The broker becomes unreachable: every connection cut, new ones refused.
      proxy.refuse();
      await waitUntil('readiness to report the outage', () => !indicator.isReady);
      const error = await ready().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ServiceUnavailableException);
      expect((error as ServiceUnavailableException).getResponse()).toMatchObject({
        status: 'error',
        error: { rabbitmq: { status: 'down', connections: { consume: { connected: false } } } },
      });
      // What an operator reads: terminus logs the failed check (its logger has no context) with the
      // indicator's details.
      expect(logged('error', '')).toContainEqual(
        expect.stringMatching(/^Health Check has failed! \{"rabbitmq":\{"status":"down","connections":\{"consume":/),
      );
      // Restarting the pod cannot bring the broker back: liveness stays up, and says what it sees.
      await expect(live()).resolves.toMatchObject({
        status: 'ok',
        info: { rabbitmq: { status: 'up', connections: { consume: { connected: false } } } },
      });

      proxy.accept();
      await waitUntil('readiness to be back', () => indicator.isReady, 20_000);
      await expect(ready()).resolves.toMatchObject({ status: 'ok' });
      await expect(live()).resolves.toMatchObject({ status: 'ok' });
    } finally {
      await moduleRef.close();
      await proxy.stop();
    }
  }, 40_000);
});

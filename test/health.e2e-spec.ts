import { Injectable, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test, type TestingModule } from '@nestjs/testing';
import amqplib from 'amqplib';
import { Consume, ConsumerRegistry, TopologyError, WarrenHealthIndicator, WarrenModule } from 'nestjs-warren';
import { brokerUrl, deleteTopology, unique, waitUntil } from './support/broker.js';
import { closeConnection } from './support/connections.js';
import { logged } from './support/logs.js';

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

async function compile(provider: typeof Worker, connectionName: string): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      WarrenModule.forRoot({ url: brokerUrl(), connectionName, reconnectDelayMs: 2000, connectTimeoutMs: 10_000 }),
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
    expect(indicator.readiness()).toEqual({ rabbitmq: { status: 'down' } });

    await moduleRef.init();
    expect(indicator.isReady).toBe(true);
    expect(indicator.readiness('warren')).toEqual({ warren: { status: 'up' } });
    // Ready means consuming: the queue exists and has its consumer.
    const connection = await amqplib.connect(brokerUrl());
    const { consumerCount } = await (await connection.createChannel()).checkQueue(QUEUE);
    await connection.close();
    expect(consumerCount).toBe(1);

    await moduleRef.close();
    expect(indicator.isReady).toBe(false);
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

  it('reports up through @nestjs/terminus, down while a connection is lost, and up again after reconnecting', async () => {
    const name = unique('e2e-health-live');
    const moduleRef = await compile(Worker, name);
    await moduleRef.init();
    const indicator = moduleRef.get(WarrenHealthIndicator);
    const health = moduleRef.get(HealthCheckService);
    const check = () => health.check([() => indicator.check('rabbitmq')]);

    await expect(check()).resolves.toMatchObject({
      status: 'ok',
      info: {
        rabbitmq: {
          status: 'up',
          ready: true,
          connections: { consume: { connected: true }, publish: { connected: true } },
          consumers: { total: 1, active: 1, paused: [], inactive: [] },
        },
      },
    });

    // A consumer paused on purpose is not a failure.
    const [consumer] = moduleRef.get(ConsumerRegistry).list();
    await consumer.pause();
    expect(indicator.check().rabbitmq).toMatchObject({
      status: 'up',
      consumers: { active: 0, paused: ['Worker.work'], inactive: [] },
    });
    await consumer.resume();

    await closeConnection(`${name}:consume`);
    await waitUntil('the indicator to report the lost connection', () => indicator.check().rabbitmq.status === 'down');
    const error = await check().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceUnavailableException);
    expect((error as ServiceUnavailableException).getResponse()).toMatchObject({
      status: 'error',
      error: { rabbitmq: { status: 'down', connections: { consume: { connected: false } } } },
    });
    // What an operator reads: terminus logs the failed check (its logger has no context) with the
    // indicator's details.
    expect(logged('error', '')).toContainEqual(
      expect.stringMatching(
        /^Health Check has failed! \{"rabbitmq":\{"status":"down","connections":\{"consume":\{"connected":false,/,
      ),
    );

    await waitUntil('the consumer to be back', () => indicator.check().rabbitmq.status === 'up', 20_000);
    await expect(check()).resolves.toMatchObject({ status: 'ok' });
    await moduleRef.close();
  }, 40_000);
});

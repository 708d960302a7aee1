import { Injectable } from '@nestjs/common';
import amqplib from 'amqplib';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Consume, Publisher, PublishError, WarrenConnection, WarrenHealthIndicator } from 'nestjs-warren';
import { type RabbitMQ, startRabbitMQ } from 'nestjs-warren/testing';
import { findServer } from '../libs/warren/src/testing/start-rabbitmq.js';
import { bootApp } from './support/app.js';
import { unique, waitUntil } from './support/broker.js';

// What the broker's own settings and alarms do to an app, on a private node of this suite's own,
// since each case changes the node for everyone on it.
const run = promisify(execFile);
const QUEUE = unique('e2e.hostile-broker.work');

@Injectable()
class Worker {
  handled = 0;

  @Consume(QUEUE)
  onWork() {
    this.handled++;
  }
}

describe('hostile broker', () => {
  let broker: RabbitMQ;
  let ctl: (...args: string[]) => Promise<void>;

  beforeAll(async () => {
    broker = await startRabbitMQ({ private: true, management: false });
    const server = await findServer();
    if (!server || !broker.nodeName) throw new Error('a private node needs the local rabbitmq-server install');
    const rabbitmqctl = join(dirname(server), 'rabbitmqctl');
    ctl = async (...args) => {
      await run(rabbitmqctl, ['-n', broker.nodeName!, ...args], {
        env: { ...process.env, ERL_EPMD_ADDRESS: '127.0.0.1' },
      });
    };
  }, 120_000);

  afterAll(async () => {
    await broker?.stop();
  });

  it("a publish over the broker's max_message_size is refused; the 300 in flight beside it are delivered, none called refused", async () => {
    await ctl('eval', 'application:set_env(rabbit, max_message_size, 1048576).');
    const app = await bootApp({}, { url: broker.url, maxMessageBytes: 4 * 1024 * 1024 });
    const setup = await amqplib.connect(broker.url);
    try {
      const ch = await setup.createChannel();
      await ch.assertQueue(QUEUE);
      const publisher = app.get(Publisher);
      const send = (i: number) =>
        publisher.sendToQueue(QUEUE, { i }).then(
          () => 'ok',
          (e: Error) => e.message,
        );
      // The refused one in the middle: the channel closes with publishes on both sides of it in flight.
      const before = Array.from({ length: 150 }, (_, i) => send(i));
      const big = publisher.sendToQueue(QUEUE, Buffer.alloc(2_000_000)).catch((e: unknown) => e);
      const after = Array.from({ length: 150 }, (_, i) => send(150 + i));
      const small = [...before, ...after];
      const results = await Promise.all(small);
      expect(results.filter((r) => r !== 'ok')).toEqual([]);
      const refused = await big;
      expect(refused).toBeInstanceOf(PublishError);
      expect((refused as Error).message).toMatch(
        /^Cannot publish to queue ".*": the broker refused it: .*larger than configured max size 1048576/,
      );
      // At least once: each was delivered, some perhaps twice.
      expect((await ch.checkQueue(QUEUE)).messageCount).toBeGreaterThanOrEqual(300);
      await ch.deleteQueue(QUEUE);
    } finally {
      await ctl('eval', 'application:set_env(rabbit, max_message_size, 134217728).');
      await setup.close();
      await app.close();
    }
  });

  it('readiness is down while a memory alarm blocks the publishing connection, and up once it clears; the waiting publish is then confirmed', async () => {
    const app = await bootApp({ providers: [Worker] }, { url: broker.url, connectTimeoutMs: 10_000 });
    const warren = app.get(WarrenConnection);
    const health = app.get(WarrenHealthIndicator);
    let blocked = false;
    warren.onEvent('publish', 'blocked', () => (blocked = true));
    try {
      expect(health.readiness().rabbitmq).toMatchObject({
        status: 'up',
        connections: { publish: { connected: true, blocked: false } },
      });
      await ctl('set_vm_memory_high_watermark', '0.0000001');
      // The broker blocks a connection when it next publishes.
      const waiting = app.get(Publisher).sendToQueue(QUEUE, { n: 1 });
      await waitUntil('the publishing connection blocked', () => blocked);
      expect(health.readiness().rabbitmq).toMatchObject({
        status: 'down',
        connections: { publish: { connected: true, blocked: true } },
      });
      expect(warren.blockedReason('publish')).toMatch(/memory/i);
      await ctl('set_vm_memory_high_watermark', '0.4');
      await waitUntil('readiness up again once the alarm clears', () => health.isReady);
      expect(health.readiness().rabbitmq.connections.publish.blocked).toBe(false);
      await expect(waiting).resolves.toBeUndefined();
      await waitUntil('the waiting message handled', () => app.get(Worker).handled === 1);
    } finally {
      await ctl('set_vm_memory_high_watermark', '0.4');
      await app.close();
    }
  });

  it('app.close() ends within its bounds while a memory alarm blocks the publishing connection; the waiting publish fails', async () => {
    const app = await bootApp(
      { providers: [Worker] },
      { url: broker.url, shutdownTimeoutMs: 1500, connectTimeoutMs: 10_000 },
    );
    const warren = app.get(WarrenConnection);
    let blocked = false;
    warren.onEvent('publish', 'blocked', () => (blocked = true));
    await ctl('set_vm_memory_high_watermark', '0.0000001');
    try {
      const publisher = app.get(Publisher);
      // The broker blocks a connection when it next publishes.
      const waiting = publisher.sendToQueue(QUEUE, { n: 1 }).catch((e: unknown) => e);
      await waitUntil('the publishing connection blocked', () => blocked);
      // Bounded: the consumers' drain and the connections' close each wait at most shutdownTimeoutMs.
      let timer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([
        app.close().then(() => 'closed'),
        new Promise((resolve) => (timer = setTimeout(() => resolve('still closing'), 2 * 1500 + 5000))),
      ]);
      clearTimeout(timer);
      expect(closed).toBe('closed');
      const failed = await waiting;
      expect(failed).toBeInstanceOf(PublishError);
      expect((failed as Error).message).toMatch(/may or may not have been delivered|shut down/);
    } finally {
      await ctl('set_vm_memory_high_watermark', '0.4');
    }
  });
});

import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Publisher, WarrenModule } from 'nestjs-warren';
import {
  type RabbitMQ,
  recordHandled,
  recordPublished,
  resetDeclaredTopology,
  startRabbitMQ,
} from 'nestjs-warren/testing';
import { OrangeAnimalLogs, TopicLogsModule } from '../src/tutorials/topic-logs.module.js';

// Written as a user of nestjs-warren would write it: the setup is the nine lines below.
let broker: RabbitMQ;
let app: INestApplicationContext;
beforeAll(async () => {
  broker = await startRabbitMQ();
  const moduleRef = await Test.createTestingModule({
    imports: [WarrenModule.forRoot({ url: broker.url }), TopicLogsModule],
  }).compile();
  app = await moduleRef.init();
});
afterAll(async () => {
  await resetDeclaredTopology(app, 'delete');
  await app.close();
  await broker.stop();
});

describe('the testing kit, used on the tutorial topic app', () => {
  it('waits for a handler to have processed a given message', async () => {
    const handled = recordHandled(app, 'OrangeAnimalLogs.onLog');
    const publisher = app.get(Publisher);
    await publisher.publish('topic_logs', 'quick.brown.fox', 'not orange', { contentType: 'text/plain' });
    await publisher.publish('topic_logs', 'quick.orange.rabbit', 'A rabbit', { contentType: 'text/plain' });
    const message = await handled.waitFor((m) => m.payload === 'A rabbit');
    expect(message).toMatchObject({ outcome: 'handled', label: 'OrangeAnimalLogs.onLog' });
    expect(message.context.routingKey).toBe('quick.orange.rabbit');
    expect(handled.entries.map((m) => m.payload)).toEqual(['A rabbit']);
    expect(app.get(OrangeAnimalLogs).lines).toContain(' [x] quick.orange.rabbit:A rabbit');
    handled.stop();
  });

  it('waits for N handled messages and captures what the app published', async () => {
    const handled = recordHandled(app);
    const published = recordPublished(app);
    const publisher = app.get(Publisher);
    for (const key of ['a.orange.b', 'c.orange.d', 'lazy.brown.fox'])
      await publisher.publish('topic_logs', key, { key });
    const [first, second] = await handled.waitForCount(2);
    expect([first.payload, second.payload]).toEqual([{ key: 'a.orange.b' }, { key: 'c.orange.d' }]);
    expect(published.entries.map((m) => [m.exchange, m.routingKey, m.payload])).toEqual([
      ['topic_logs', 'a.orange.b', { key: 'a.orange.b' }],
      ['topic_logs', 'c.orange.d', { key: 'c.orange.d' }],
      ['topic_logs', 'lazy.brown.fox', { key: 'lazy.brown.fox' }],
    ]);
    await expect(handled.waitForCount(3, 300)).rejects.toThrow('timed out after 300 ms waiting for 3 entries (have 2)');
    handled.stop();
    published.stop();
  });
});

describe('resetDeclaredTopology', () => {
  it('purges, then deletes, the queues and exchanges an app declared', async () => {
    const queue = `kit.reset.${process.pid}`;
    const exchange = `kit.reset-x.${process.pid}`;
    const moduleRef = await Test.createTestingModule({
      imports: [
        WarrenModule.forRoot({
          url: broker.url,
          topology: {
            exchanges: [{ name: exchange, type: 'fanout' }],
            queues: [{ name: queue }],
            bindings: [{ exchange, queue, routingKey: '' }],
          },
        }),
      ],
    }).compile();
    const other = await moduleRef.init();
    try {
      for (let i = 0; i < 3; i++) await other.get(Publisher).publish(exchange, '', { i });
      const { default: amqplib } = await import('amqplib');
      const connection = await amqplib.connect(broker.url);
      const check = async () => {
        const ch = await connection.createChannel();
        ch.on('error', () => undefined);
        const q = await ch.checkQueue(queue).then(
          (ok) => ok.messageCount,
          () => 'gone',
        );
        const x = await ch.checkExchange(exchange).then(
          () => 'there',
          () => 'gone',
        );
        await ch.close().catch(() => undefined);
        return [q, x];
      };
      expect(await check()).toEqual([3, 'there']);
      await resetDeclaredTopology(other, 'purge');
      expect(await check()).toEqual([0, 'there']);
      await resetDeclaredTopology(other, 'delete');
      expect(await check()).toEqual(['gone', 'gone']);
      await connection.close();
    } finally {
      await other.close();
    }
  });
});

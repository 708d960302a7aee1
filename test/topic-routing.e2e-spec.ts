import type { INestApplicationContext } from '@nestjs/common';
import { Publisher } from 'nestjs-warren';
import { bootApp } from './support/app.js';
import { bindingsFrom, deleteTopology, waitUntil } from './support/broker.js';
import { TUTORIAL_TOPIC_END, TUTORIAL_TOPIC_KEYS, tutorialTopicReceivers } from './support/tutorial-topic-table.js';

// The tutorial's own names would collide with the tutorial-program suites; same shape, own exchange.
const EXCHANGE = 'e2e.topic_logs';
const END = TUTORIAL_TOPIC_END;
const { OrangeAnimals, RabbitsAndLazyOnes } = tutorialTopicReceivers(EXCHANGE);

describe('topic exchange: the tutorial routing table', () => {
  let app: INestApplicationContext;
  afterAll(async () => {
    await app?.close();
    await deleteTopology({ exchanges: [EXCHANGE] });
  });

  it('routes every key of the tutorial exactly as RabbitMQ documents it', async () => {
    app = await bootApp({ providers: [OrangeAnimals, RabbitsAndLazyOnes] });
    const publisher = app.get(Publisher);
    const keys = [...TUTORIAL_TOPIC_KEYS, END];
    for (const key of keys) await publisher.publish(EXCHANGE, key, { key });
    const q1 = app.get(OrangeAnimals);
    const q2 = app.get(RabbitsAndLazyOnes);
    await waitUntil('the end marker in both queues', () => q1.keys.includes(END) && q2.keys.includes(END));

    expect(q1.keys).toEqual(['quick.orange.rabbit', 'lazy.orange.elephant', 'quick.orange.fox', END]);
    expect(q2.keys).toEqual([
      'quick.orange.rabbit',
      'lazy.orange.elephant',
      'lazy.brown.fox',
      'lazy.pink.rabbit', // matches both of Q2's bindings, delivered once
      'lazy.orange.new.rabbit',
      END,
    ]);
  });

  it('left on the broker exactly the bindings the decorators declared', async () => {
    const bindings = await bindingsFrom(EXCHANGE);
    const byKey = bindings.map(([, key]) => key).sort();
    expect(byKey).toEqual(['*.*.rabbit', '*.orange.*', 'lazy.#']);
    // Two queues: one for Q1's single key, one shared by Q2's two keys.
    const queues = new Map<string, string[]>();
    for (const [queue, key] of bindings) queues.set(queue, [...(queues.get(queue) ?? []), key]);
    expect([...queues.values()].map((k) => k.sort()).sort()).toEqual([['*.*.rabbit', 'lazy.#'], ['*.orange.*']]);
  });
});

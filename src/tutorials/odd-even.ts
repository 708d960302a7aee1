import { Injectable, Module } from '@nestjs/common';
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Publisher, Subscribe } from 'nestjs-warren';
import { type Program, UsageError } from './program.js';
import { warren } from './broker.js';

// The odd/even example: a durable direct exchange "integers", durable queues "odds" and "evens".
const INTEGERS = { name: 'integers', type: 'direct' } as const;

export const integersProducer: Program = {
  name: 'integers_producer',
  usage: 'integers_producer [--count N] [--interval-ms MS]   publishes random integers 1..100, one a second',
  module: () => ({
    module: class IntegersProducerModule {},
    imports: [warren({ topology: { exchanges: [INTEGERS] } })],
  }),
  async run(app, args) {
    const count = flag(args, '--count') ?? Infinity;
    const interval = flag(args, '--interval-ms') ?? 1000;
    const publisher = app.get(Publisher);
    for (let sent = 0; sent < count; sent++) {
      if (sent > 0) await sleep(interval);
      const i = randomInt(1, 101);
      await publisher.publish(INTEGERS.name, i % 2 === 0 ? 'even' : 'odd', String(i), { contentType: 'text/plain' });
      console.log(`integer: ${i}`);
    }
    return 'done';
  },
};

function flag(args: string[], name: string): number | undefined {
  const at = args.indexOf(name);
  if (at === -1) return undefined;
  const value = Number(args[at + 1]);
  if (!Number.isInteger(value) || value < 0) throw new UsageError(`${name} needs a whole number, got ${args[at + 1]}`);
  return value;
}

@Injectable()
class OddConsumer {
  @Subscribe(INTEGERS.name, 'odd', { exchangeType: 'direct', queue: 'odds' })
  onOdd(body: string) {
    console.log(`odd integer: ${body}`);
  }
}

@Injectable()
class EvenConsumer {
  @Subscribe(INTEGERS.name, 'even', { exchangeType: 'direct', queue: 'evens' })
  onEven(body: string) {
    console.log(`even integer: ${body}`);
  }
}

@Module({ imports: [warren()], providers: [OddConsumer] })
class OddsModule {}

@Module({ imports: [warren()], providers: [EvenConsumer] })
class EvensModule {}

export const odds: Program = {
  name: 'odds',
  usage: 'odds                       prints odd integers (queue odds)',
  module: () => OddsModule,
};
export const evens: Program = {
  name: 'evens',
  usage: 'evens                      prints even integers (queue evens)',
  module: () => EvensModule,
};

import { Injectable } from '@nestjs/common';
import { Subscribe, type WarrenContext } from 'nestjs-warren';

/**
 * The routing keys of the RabbitMQ tutorial's topic example (part 5), in the tutorial's order.
 * Q1 binds `*.orange.*`; Q2 binds `*.*.rabbit` and `lazy.#`. Every suite that checks the table
 * publishes these; each states the routing it expects itself.
 */
export const TUTORIAL_TOPIC_KEYS: readonly string[] = [
  'quick.orange.rabbit',
  'lazy.orange.elephant',
  'quick.orange.fox',
  'lazy.brown.fox',
  'lazy.pink.rabbit',
  'quick.brown.fox',
  'orange',
  'quick.orange.new.rabbit',
  'lazy.orange.new.rabbit',
];

/** The tutorial's routing table's last key: it matches both queues, so it marks the end of a run in each. */
export const TUTORIAL_TOPIC_END = 'lazy.orange.end';

/**
 * The tutorial's two receivers as decorated providers on `exchange`: Q1 (`*.orange.*`) and Q2
 * (`*.*.rabbit`, `lazy.#`), each recording the routing keys and payloads it got. A fresh pair of
 * classes per call, so suites on different exchanges do not share handlers.
 */
export function tutorialTopicReceivers(exchange: string) {
  @Injectable()
  class OrangeAnimals {
    readonly keys: string[] = [];
    readonly payloads: unknown[] = [];
    @Subscribe(exchange, '*.orange.*')
    onMessage(payload: unknown, context: WarrenContext) {
      this.keys.push(context.routingKey);
      this.payloads.push(payload);
    }
  }

  @Injectable()
  class RabbitsAndLazyOnes {
    readonly keys: string[] = [];
    readonly payloads: unknown[] = [];
    @Subscribe(exchange, ['*.*.rabbit', 'lazy.#'])
    onMessage(payload: unknown, context: WarrenContext) {
      this.keys.push(context.routingKey);
      this.payloads.push(payload);
    }
  }

  return { OrangeAnimals, RabbitsAndLazyOnes };
}

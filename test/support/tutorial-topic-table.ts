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

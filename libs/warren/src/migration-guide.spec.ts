import { readFileSync } from 'node:fs';

// docs/migrating-from-golevelup.md promises a row for each option and decorator of
// @golevelup/nestjs-rabbitmq. These are its public names as of 9.0.2 (rabbitmq.interfaces.ts,
// rabbitmq.decorators.ts, amqp/connection.ts, amqp/errorBehaviors.ts, rabbitmq.helpers.ts): each
// must be named in the golevelup column of one of the guide's tables. A golevelup release that adds
// a name belongs here first, so the guide cannot fall behind without this failing.
const GOLEVELUP_NAMES: Record<string, string[]> = {
  RabbitMQModule: ['forRoot', 'forRootAsync', 'attach'],
  RabbitMQConfig: [
    'name',
    'uri',
    'prefetchCount',
    'exchanges',
    'exchangeBindings',
    'queues',
    'defaultRpcTimeout',
    'defaultExchangeType',
    'defaultRpcErrorHandler',
    'defaultSubscribeErrorBehavior',
    'connectionInitOptions',
    'connectionManagerOptions',
    'registerHandlers',
    'enableDirectReplyTo',
    'enableControllerDiscovery',
    'channels',
    'handlers',
    'defaultHandler',
    'logger',
    'deserializer',
    'serializer',
    'defaultPublishOptions',
  ],
  ConnectionInitOptions: ['wait', 'timeout', 'reject', 'skipConnectionFailedLogging', 'skipDisconnectFailedLogging'],
  RabbitMQExchangeConfig: ['createExchangeIfNotExists'],
  RabbitMQQueueConfig: ['createQueueIfNotExists', 'consumerTag', 'bindQueueArguments'],
  MessageHandlerOptions: [
    'name',
    'connection',
    'exchange',
    'routingKey',
    'bindings',
    'queue',
    'queueOptions',
    'errorBehavior',
    'errorHandler',
    'assertQueueErrorHandler',
    'allowNonJsonMessages',
    'createQueueIfNotExists',
    'usePersistentReplyTo',
    'deserializer',
    'batchOptions',
  ],
  QueueOptions: [
    'durable',
    'exclusive',
    'autoDelete',
    'arguments',
    'messageTtl',
    'expires',
    'deadLetterExchange',
    'deadLetterRoutingKey',
    'maxLength',
    'maxPriority',
    'bindQueueArguments',
    'channel',
    'consumerOptions',
  ],
  'decorators and helpers': [
    'RabbitSubscribe',
    'RabbitRPC',
    'RabbitHandler',
    'RabbitPayload',
    'RabbitHeader',
    'RabbitRequest',
    'InjectRabbitMQConfig',
    'createPipesRpcParamDecorator',
    'isRabbitContext',
    'Nack',
  ],
  'error handlers': [
    'ackErrorHandler',
    'requeueErrorHandler',
    'defaultNackErrorHandler',
    'defaultAssertQueueErrorHandler',
    'forceDeleteAssertQueueErrorHandler',
  ],
  AmqpConnection: [
    'publish',
    'request',
    'createSubscriber',
    'createBatchSubscriber',
    'createRpc',
    'cancelConsumer',
    'resumeConsumer',
    'consumerTags',
    'connection',
    'channel',
    'channels',
    'managedChannel',
    'managedChannels',
    'managedConnection',
    'connected',
    'configuration',
  ],
};

/** Every identifier inside a code span of the first cell of the guide's table rows. */
function golevelupColumn(markdown: string): Set<string> {
  const names = new Set<string>();
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('|') || /^\|\s*-/.test(line)) continue;
    const first = line.slice(1).split(/(?<!\\)\|/)[0];
    for (const [, code] of first.matchAll(/`([^`]+)`/g)) {
      for (const [word] of code.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)) names.add(word);
    }
  }
  return names;
}

const guide = readFileSync(new URL('../../../docs/migrating-from-golevelup.md', import.meta.url), 'utf8');
const column = golevelupColumn(guide);

describe('docs/migrating-from-golevelup.md', () => {
  it.each(Object.entries(GOLEVELUP_NAMES))("has a row for every name of golevelup's %s", (_, names) => {
    expect(names.filter((name) => !column.has(name))).toEqual([]);
  });
});

import 'reflect-metadata';
import { WarrenDecoratorError } from '../warren.errors.js';
import { Consume } from './consume.decorator.js';
import { getHandlerMetadata, type HandlerMetadata } from './handler-metadata.js';
import { RpcHandler } from './rpc-handler.decorator.js';
import { Subscribe } from './subscribe.decorator.js';

describe('queue options of the handler decorators', () => {
  it('refuse what RabbitMQ would refuse when the class is defined, naming the decorator and the method', () => {
    expect(() => {
      class Jobs {
        @Consume('jobs', { queueType: 'classic', deliveryLimit: 3 })
        run() {}
      }
      return Jobs;
    }).toThrow(new WarrenDecoratorError('@Consume() on Jobs.run: deliveryLimit needs queueType "quorum"'));
    expect(() => {
      class Jobs {
        @Consume('jobs', { maxLength: -1 })
        run() {}
      }
      return Jobs;
    }).toThrow(
      new WarrenDecoratorError('@Consume() on Jobs.run: maxLength must be a whole number of at least 0, got -1'),
    );
    expect(() => {
      class Events {
        @Consume('events', { queueType: 'stream', maxPriority: 5 })
        run() {}
      }
      return Events;
    }).toThrow(new WarrenDecoratorError('@Consume() on Events.run: maxPriority needs queueType "classic"'));
    expect(() => {
      class Audit {
        @Subscribe('audit', 'k', { queue: 'audit', queueType: 'quorum', exclusive: true })
        on() {}
      }
      return Audit;
    }).toThrow(new WarrenDecoratorError('@Subscribe() on Audit.on: quorum queues cannot be exclusive'));
    expect(() => {
      class Audit {
        @Subscribe('audit', 'k', { queueType: 'quorum' })
        on() {}
      }
      return Audit;
    }).toThrow(
      new WarrenDecoratorError(
        '@Subscribe() on Audit.on: quorum queues need a name (a server-named queue is temporary)',
      ),
    );
    expect(() => {
      class Quotes {
        @RpcHandler('quotes', { queueType: 'lazy' as never })
        quote() {}
      }
      return Quotes;
    }).toThrow(
      new WarrenDecoratorError(
        '@RpcHandler() on Quotes.quote: queueType must be "classic", "quorum", "stream", got "lazy"',
      ),
    );
  });

  it('leave the type checks of an option to the topology builder when no type is given: the module may set one', () => {
    class Jobs {
      @Consume('jobs', { deliveryLimit: 3 })
      run() {}
    }
    expect(((getHandlerMetadata(Jobs.prototype, 'run') ?? []) as HandlerMetadata[])[0].consumer).toMatchObject({
      deliveryLimit: 3,
    });
  });

  it('record the queue type and delivery limit for the topology builder, deriving no arguments', () => {
    class Jobs {
      @Consume('jobs', { queueType: 'quorum', deliveryLimit: 3, arguments: { 'x-max-length': 10 } })
      run() {}
    }
    const [metadata] = (getHandlerMetadata(Jobs.prototype, 'run') ?? []) as HandlerMetadata[];
    expect(metadata.consumer.queue).toEqual({ name: 'jobs', arguments: { 'x-max-length': 10 } });
    expect(metadata.consumer).toMatchObject({ queueType: 'quorum', deliveryLimit: 3 });
  });
});

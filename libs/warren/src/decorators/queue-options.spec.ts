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
        @Consume('jobs', { deliveryLimit: 3 })
        run() {}
      }
      return Jobs;
    }).toThrow(new WarrenDecoratorError('@Consume() on Jobs.run: deliveryLimit needs queueType "quorum"'));
    expect(() => {
      class Audit {
        @Subscribe('audit', 'k', { queue: 'audit', queueType: 'quorum', exclusive: true })
        on() {}
      }
      return Audit;
    }).toThrow(new WarrenDecoratorError('@Subscribe() on Audit.on: quorum queues are durable and never exclusive'));
    expect(() => {
      class Quotes {
        @RpcHandler('quotes', { queueType: 'lazy' as never })
        quote() {}
      }
      return Quotes;
    }).toThrow(
      new WarrenDecoratorError('@RpcHandler() on Quotes.quote: queueType must be "classic" or "quorum", got "lazy"'),
    );
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

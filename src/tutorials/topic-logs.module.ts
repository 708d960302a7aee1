import { Injectable, Module } from '@nestjs/common';
import { Subscribe, type WarrenContext } from 'nestjs-warren';

/**
 * Tutorial 5's receiver as a plain Nest module, with its binding keys in decorators: the shape
 * most apps take (the `receive_logs_topic` program binds keys from its command line instead).
 * Import it next to `WarrenModule.forRoot()`.
 */
@Injectable()
export class OrangeAnimalLogs {
  readonly lines: string[] = [];

  @Subscribe('topic_logs', '*.orange.*', { exchangeOptions: { durable: false } })
  onLog(body: string, context: WarrenContext) {
    this.lines.push(` [x] ${context.routingKey}:${body}`);
  }
}

@Module({ providers: [OrangeAnimalLogs] })
export class TopicLogsModule {}

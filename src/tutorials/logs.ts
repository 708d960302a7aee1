import { Injectable, Module } from '@nestjs/common';
import { ConsumerRegistry, Publisher, Subscribe, type WarrenContext } from 'nestjs-warren';
import { type Program, UsageError, WAITING_FOR_LOGS } from './program.js';
import { warren } from './broker.js';

// Tutorials 3-5 declare their exchanges non-durable; other-language programs on the same broker
// declare them the same way, and RabbitMQ refuses a re-declaration with other settings.
const LOGS = { name: 'logs', type: 'fanout', durable: false } as const;
const DIRECT_LOGS = { name: 'direct_logs', type: 'direct', durable: false } as const;
const TOPIC_LOGS = { name: 'topic_logs', type: 'topic', durable: false } as const;

function emitter(name: string, exchange: { name: string; type: 'fanout' | 'direct' | 'topic'; durable: boolean }) {
  return { module: class EmitterModule {}, imports: [warren({ topology: { exchanges: [exchange] } })], name };
}

// --- Tutorial 3: publish/subscribe on a fanout exchange ---------------------------------------

export const emitLog: Program = {
  name: 'emit_log',
  usage: 'emit_log [message...]      broadcasts a log line on fanout exchange logs',
  module: () => emitter('emit_log', LOGS),
  async run(app, args) {
    const message = args.join(' ') || 'info: Hello World!';
    await app.get(Publisher).publish(LOGS.name, '', message, { contentType: 'text/plain', persistent: false });
    console.log(` [x] Sent ${message}`);
    return 'done';
  },
};

@Injectable()
class LogReceiver {
  // No queue name: each running receiver gets its own temporary queue, so all of them hear everything.
  @Subscribe(LOGS.name, { exchangeType: 'fanout', exchangeOptions: { durable: false } })
  onLog(body: string) {
    console.log(` [x] ${body}`);
  }
}

@Module({ imports: [warren()], providers: [LogReceiver] })
class ReceiveLogsModule {}

export const receiveLogs: Program = {
  name: 'receive_logs',
  usage: 'receive_logs               prints every log line broadcast on logs',
  module: () => ReceiveLogsModule,
  async run() {
    console.log(WAITING_FOR_LOGS);
  },
};

// --- Tutorials 4 and 5: routing by severity, then by topic ------------------------------------

function emitWithKey(name: string, exchange: typeof DIRECT_LOGS | typeof TOPIC_LOGS, defaultKey: string): Program {
  return {
    name,
    usage: `${name} [${exchange.type === 'direct' ? 'severity' : 'routing_key'}] [message...]`,
    module: () => emitter(name, exchange),
    async run(app, args) {
      const key = args[0] || defaultKey;
      const message = args.slice(1).join(' ') || 'Hello World!';
      await app.get(Publisher).publish(exchange.name, key, message, { contentType: 'text/plain', persistent: false });
      console.log(` [x] Sent ${key}:${message}`);
      return 'done';
    },
  };
}

/**
 * The binding keys come from the command line, so these receivers subscribe at runtime through
 * the ConsumerRegistry: the same checks, declarations and consumer as a `@Subscribe` decorator.
 */
function receiveWithKeys(name: string, exchange: typeof DIRECT_LOGS | typeof TOPIC_LOGS, usage: string): Program {
  return {
    name,
    usage: `${name} ${usage}`,
    module: (args) => {
      if (args.length === 0) throw new UsageError(`Usage: ${name} ${usage}`);
      return { module: class ReceiveWithKeysModule {}, imports: [warren()] };
    },
    async run(app, args) {
      await app
        .get(ConsumerRegistry)
        .subscribe(
          exchange.name,
          args,
          (body: string, context: WarrenContext) => console.log(` [x] ${context.routingKey}:${body}`),
          { type: exchange.type, exchangeOptions: { durable: false }, label: name },
        );
      console.log(WAITING_FOR_LOGS);
    },
  };
}

export const emitLogDirect = emitWithKey('emit_log_direct', DIRECT_LOGS, 'info');
export const receiveLogsDirect = receiveWithKeys('receive_logs_direct', DIRECT_LOGS, '[info] [warning] [error]');
export const emitLogTopic = emitWithKey('emit_log_topic', TOPIC_LOGS, 'anonymous.info');
export const receiveLogsTopic = receiveWithKeys('receive_logs_topic', TOPIC_LOGS, '[binding_key]...');

import { Injectable, Module } from '@nestjs/common';
import { Consume, Publisher } from 'nestjs-warren';
import { type Program, WAITING_FOR_MESSAGES } from './program.js';
import { warren } from './broker.js';

// Tutorial 1: a non-durable queue named "hello" on the default exchange.
const HELLO = { name: 'hello', durable: false };

export const send: Program = {
  name: 'send',
  usage: 'send                       sends "Hello World!" to queue hello',
  module: () => ({ module: class SendModule {}, imports: [warren({ topology: { queues: [HELLO] } })] }),
  async run(app) {
    await app.get(Publisher).sendToQueue('hello', 'Hello World!', { contentType: 'text/plain', persistent: false });
    console.log(" [x] Sent 'Hello World!'");
    return 'done';
  },
};

@Injectable()
class HelloReceiver {
  @Consume('hello', { durable: false })
  onMessage(body: string) {
    console.log(` [x] Received ${body}`);
  }
}

@Module({ imports: [warren()], providers: [HelloReceiver] })
class ReceiveModule {}

export const receive: Program = {
  name: 'receive',
  usage: 'receive                    prints what arrives on queue hello',
  module: () => ReceiveModule,
  async run() {
    console.log(WAITING_FOR_MESSAGES);
  },
};

import { Injectable, Module } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { Consume, Publisher } from 'nestjs-warren';
import { type Program, WAITING_FOR_MESSAGES } from './program.js';
import { warren } from './broker.js';

// Tutorial 2: a durable work queue, persistent tasks, one unacked task per worker (fair dispatch).
const TASK_QUEUE = 'task_queue';

export const newTask: Program = {
  name: 'new_task',
  usage: 'new_task [message...]      queues a task; each dot is a second of work',
  module: () => ({
    module: class NewTaskModule {},
    imports: [warren({ topology: { queues: [{ name: TASK_QUEUE }] } })],
  }),
  async run(app, args) {
    const message = args.join(' ') || 'Hello World!';
    await app.get(Publisher).sendToQueue(TASK_QUEUE, message, { contentType: 'text/plain' });
    console.log(` [x] Sent ${message}`);
    return 'done';
  },
};

@Injectable()
class Worker {
  @Consume(TASK_QUEUE, { prefetch: 1 })
  async onTask(body: string) {
    console.log(` [x] Received ${body}`);
    await sleep(1000 * (body.split('.').length - 1));
    console.log(' [x] Done');
  }
}

@Module({ imports: [warren()], providers: [Worker] })
class WorkerModule {}

export const worker: Program = {
  name: 'worker',
  usage: 'worker                     works through task_queue, one task at a time',
  module: () => WorkerModule,
  async run() {
    console.log(WAITING_FOR_MESSAGES);
  },
};

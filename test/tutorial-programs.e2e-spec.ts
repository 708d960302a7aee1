import { randomBytes } from 'node:crypto';
import amqplib from 'amqplib';
import { brokerUrl, deleteTopology, management, waitUntil } from './support/broker.js';
import {
  consumerCount,
  type ProgramProcess,
  publishText,
  runProgram,
  runSender,
  startProgram,
  stopAllPrograms,
  waitFor,
  waitForLine,
  waitForLines,
} from './support/programs.js';
import { TUTORIAL_TOPIC_KEYS } from './support/tutorial-topic-table.js';

// The tutorial programs, run as real processes (node dist/src/main.js <program> [args]) against
// the test broker, with the tutorials' own exchange and queue names. Each scenario deletes the
// names it depends on first: durable ones (task_queue, odds, evens) outlive earlier runs.

const WAITING_FOR_MESSAGES = ' [*] Waiting for messages. To exit press CTRL+C';
const WAITING_FOR_LOGS = ' [*] Waiting for logs. To exit press CTRL+C';

// Set on every test and hook, so the suite does not depend on the config's global timeout.
const TEST_TIMEOUT = 60_000;
const HOOK_TIMEOUT = 20_000;

/** A run-unique tag, so a line from any other run cannot pass for one of ours. */
const tag = () => randomBytes(3).toString('hex');

/** Receivers print warnings on stdout (caught by the exact line checks) and errors on stderr. */
function expectNoErrors(...procs: ProgramProcess[]): void {
  for (const p of procs) expect({ program: p.label, stderr: p.stderr }).toEqual({ program: p.label, stderr: '' });
}

/** Fails, clearly, when a program from elsewhere also consumes a queue of the tutorials. */
async function expectConsumers(queue: string, expected: number): Promise<void> {
  const actual = await consumerCount(queue);
  if (actual !== expected) {
    throw new Error(`queue ${queue} has ${actual} consumer(s), expected ${expected}: is another process consuming it?`);
  }
}

/** Starts a receiver and resolves once it says it is waiting (its consumers are up by then). */
async function startReceiver(name: string, args: string[], waiting: string): Promise<ProgramProcess> {
  const proc = startProgram(name, ...args);
  await waitForLine(proc, waiting);
  return proc;
}

afterEach(async () => {
  await stopAllPrograms();
}, HOOK_TIMEOUT);

afterAll(async () => {
  await stopAllPrograms();
  // Leave no tutorial queues (the durable ones would outlive the run) nor exchanges behind.
  await deleteTopology({
    queues: ['hello', 'task_queue', 'odds', 'evens', 'integers', 'rpc_queue'],
    exchanges: ['logs', 'direct_logs', 'topic_logs', 'integers'],
  });
}, HOOK_TIMEOUT);

describe('tutorial 1: send / receive (queue hello)', () => {
  beforeEach(() => deleteTopology({ queues: ['hello'] }), HOOK_TIMEOUT);

  it(
    'receive prints what send sent',
    async () => {
      const receiver = await startReceiver('receive', [], WAITING_FOR_MESSAGES);
      await expectConsumers('hello', 1);

      const sent = await runProgram('send');
      expect(sent).toMatchObject({ code: 0, lines: [" [x] Sent 'Hello World!'"], stderr: '' });

      await waitForLine(receiver, ' [x] Received Hello World!');
      expect(receiver.lines).toEqual([WAITING_FOR_MESSAGES, ' [x] Received Hello World!']);
      expectNoErrors(receiver);
    },
    TEST_TIMEOUT,
  );
});

describe('tutorial 2: new_task / worker (durable task_queue, prefetch 1)', () => {
  beforeEach(() => deleteTopology({ queues: ['task_queue'] }), HOOK_TIMEOUT);

  const received = (task: string) => ` [x] Received ${task}`;
  const DONE = ' [x] Done';
  const tasksOf = (w: ProgramProcess) => w.matching(/^ \[x\] Received /).map((l) => l.slice(' [x] Received '.length));
  const newTask = (task: string) => runSender('new_task', [task], [` [x] Sent ${task}`]);

  /** Two idle workers, started one after the other (each waiting before the next starts). */
  async function twoWorkers(): Promise<[ProgramProcess, ProgramProcess]> {
    const a = await startReceiver('worker', [], WAITING_FOR_MESSAGES);
    const b = await startReceiver('worker', [], WAITING_FOR_MESSAGES);
    await expectConsumers('task_queue', 2);
    return [a, b];
  }

  it(
    'new_task queues a persistent task on the durable task_queue',
    async () => {
      const task = `persistent-${tag()}`;
      await newTask(task);
      const queue = await management<{ durable: boolean; auto_delete: boolean }>('/api/queues/%2F/task_queue');
      expect(queue).toMatchObject({ durable: true, auto_delete: false });
      const connection = await amqplib.connect(brokerUrl());
      try {
        const channel = await connection.createChannel();
        const message = await channel.get('task_queue', { noAck: true });
        expect(message && { body: message.content.toString(), deliveryMode: message.properties.deliveryMode }).toEqual({
          body: task,
          deliveryMode: 2,
        });
      } finally {
        await connection.close();
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'dispatches quick tasks round robin: four tasks go two and two, alternating',
    async () => {
      const [a, b] = await twoWorkers();
      const t = tag();
      const tasks = [1, 2, 3, 4].map((i) => `quick-${t}-${i}`);
      for (const task of tasks) await newTask(task);

      await waitFor([a, b], 'four tasks received and done by the two workers', () => {
        const total = tasksOf(a).length + tasksOf(b).length;
        const done = a.matching(DONE).length + b.matching(DONE).length;
        return total >= 4 && done >= 4;
      });

      // Each worker: its two tasks, each one received then done, in order.
      const [first, second] = tasksOf(a).includes(tasks[0]) ? [a, b] : [b, a];
      expect(first.lines).toEqual([WAITING_FOR_MESSAGES, received(tasks[0]), DONE, received(tasks[2]), DONE]);
      expect(second.lines).toEqual([WAITING_FOR_MESSAGES, received(tasks[1]), DONE, received(tasks[3]), DONE]);
      expectNoErrors(a, b);
    },
    TEST_TIMEOUT,
  );

  it(
    'gives a busy worker no new task: quick tasks sent during a long one all go to the other worker',
    async () => {
      const [a, b] = await twoWorkers();
      const t = tag();
      // Six dots: six seconds of work, against the milliseconds the quick tasks take to queue and
      // work through: they are published from here, not by three new_task processes (seconds each
      // on a loaded machine, which let the long task end first). The point is the worker's
      // prefetch; the tests above run new_task.
      const long = `long-${t}......`;
      await newTask(long);
      const busy = await waitFor([a, b], `one worker to receive ${long}`, () =>
        a.lines.includes(received(long)) ? a : b.lines.includes(received(long)) ? b : undefined,
      );
      const idle = busy === a ? b : a;

      const quick = [1, 2, 3].map((i) => `quick-${t}-${i}`);
      for (const task of quick) await publishText('', 'task_queue', task);
      await waitForLines(idle, DONE, quick.length);
      const idleDoneAt = idle.times[idle.lines.length - 1];

      await waitForLine(busy, DONE, 15_000);
      const busyDoneAt = busy.times[busy.indexOf(DONE)];
      // The scenario held: every quick task was done while the busy worker was still busy (else
      // the last ones could rightly go to either worker).
      expect(busyDoneAt).toBeGreaterThan(idleDoneAt);
      expect(busy.lines).toEqual([WAITING_FOR_MESSAGES, received(long), DONE]);
      expect(idle.lines).toEqual([WAITING_FOR_MESSAGES, ...quick.flatMap((task) => [received(task), DONE])]);
      expectNoErrors(a, b);
    },
    TEST_TIMEOUT,
  );

  it(
    'redelivers the task of a worker killed mid-task to the other worker',
    async () => {
      const [a, b] = await twoWorkers();
      const task = `crash-${tag()}...`; // three seconds of work: time to kill the worker in the middle
      await newTask(task);
      const victim = await waitFor([a, b], `one worker to receive ${task}`, () =>
        a.lines.includes(received(task)) ? a : b.lines.includes(received(task)) ? b : undefined,
      );
      const survivor = victim === a ? b : a;
      expect(survivor.lines).toEqual([WAITING_FOR_MESSAGES]);

      const { signal } = await victim.kill('SIGKILL');
      expect(signal).toBe('SIGKILL');
      // Killed after "Received" and before "Done": the task was never acked.
      expect(victim.lines).toEqual([WAITING_FOR_MESSAGES, received(task)]);

      await waitForLine(survivor, DONE, 10_000);
      expect(survivor.lines).toEqual([WAITING_FOR_MESSAGES, received(task), DONE]);
      expectNoErrors(a, b);
    },
    TEST_TIMEOUT,
  );
});

describe('tutorial 3: emit_log / receive_logs (fanout logs)', () => {
  beforeEach(() => deleteTopology({ exchanges: ['logs'] }), HOOK_TIMEOUT);

  it(
    'delivers every log line to each running receiver',
    async () => {
      const first = await startReceiver('receive_logs', [], WAITING_FOR_LOGS);
      const second = await startReceiver('receive_logs', [], WAITING_FOR_LOGS);
      const t = tag();
      const messages = [`info: first ${t}`, `warning: second ${t}`, `END ${t}`];
      for (const message of messages) await runSender('emit_log', [message], [` [x] Sent ${message}`]);

      const expected = [WAITING_FOR_LOGS, ...messages.map((m) => ` [x] ${m}`)];
      for (const receiver of [first, second]) {
        await waitForLine(receiver, ` [x] END ${t}`);
        expect(receiver.lines).toEqual(expected);
      }
      expectNoErrors(first, second);
    },
    TEST_TIMEOUT,
  );
});

describe('tutorial 4: emit_log_direct / receive_logs_direct (direct direct_logs)', () => {
  beforeEach(() => deleteTopology({ exchanges: ['direct_logs'] }), HOOK_TIMEOUT);

  it(
    'routes by severity: several severities per receiver, one severity on two receivers, unbound ones to nobody',
    async () => {
      const warningsAndErrors = await startReceiver('receive_logs_direct', ['warning', 'error'], WAITING_FOR_LOGS);
      const infoAndErrors = await startReceiver('receive_logs_direct', ['info', 'error'], WAITING_FOR_LOGS);
      const t = tag();
      const sent: [string, string][] = [
        ['info', `an info ${t}`],
        ['debug', `a debug ${t}`], // bound by nobody
        ['warning', `a warning ${t}`],
        ['error', `an error ${t}`],
        ['critical', `a critical ${t}`], // bound by nobody
        ['info', `another info ${t}`],
        ['error', `END ${t}`], // bound by both: the end of the run in each
      ];
      for (const [severity, message] of sent) {
        await runSender('emit_log_direct', [severity, message], [` [x] Sent ${severity}:${message}`]);
      }

      const end = ` [x] error:END ${t}`;
      await waitForLine(warningsAndErrors, end);
      await waitForLine(infoAndErrors, end);
      expect(warningsAndErrors.lines).toEqual([
        WAITING_FOR_LOGS,
        ` [x] warning:a warning ${t}`,
        ` [x] error:an error ${t}`,
        end,
      ]);
      expect(infoAndErrors.lines).toEqual([
        WAITING_FOR_LOGS,
        ` [x] info:an info ${t}`,
        ` [x] error:an error ${t}`,
        ` [x] info:another info ${t}`,
        end,
      ]);
      expectNoErrors(warningsAndErrors, infoAndErrors);
    },
    TEST_TIMEOUT,
  );

  it(
    'receive_logs_direct without a severity exits 1 with its usage on stderr',
    async () => {
      const run = await runProgram('receive_logs_direct');
      expect(run.code).toBe(1);
      expect(run.lines).toEqual([]);
      expect(run.stderr.trimEnd().split('\n')).toEqual(['Usage: receive_logs_direct [info] [warning] [error]']);
    },
    TEST_TIMEOUT,
  );
});

describe('tutorial 5: emit_log_topic / receive_logs_topic (topic topic_logs)', () => {
  beforeEach(() => deleteTopology({ exchanges: ['topic_logs'] }), HOOK_TIMEOUT);

  it(
    "routes the tutorial's keys exactly as its routing table says",
    async () => {
      const q1 = await startReceiver('receive_logs_topic', ['*.orange.*'], WAITING_FOR_LOGS);
      const q2 = await startReceiver('receive_logs_topic', ['*.*.rabbit', 'lazy.#'], WAITING_FOR_LOGS);
      const t = tag();
      const END = 'lazy.orange.end'; // matches both receivers' bindings: marks the end of the run in each
      const keys = [...TUTORIAL_TOPIC_KEYS, END];
      const message = (key: string) => `msg ${t} ${key}`;
      for (const key of keys)
        await runSender('emit_log_topic', [key, message(key)], [` [x] Sent ${key}:${message(key)}`]);

      const line = (key: string) => ` [x] ${key}:${message(key)}`;
      await waitForLine(q1, line(END));
      await waitForLine(q2, line(END));
      expect(q1.lines).toEqual([
        WAITING_FOR_LOGS,
        ...['quick.orange.rabbit', 'lazy.orange.elephant', 'quick.orange.fox', END].map(line),
      ]);
      expect(q2.lines).toEqual([
        WAITING_FOR_LOGS,
        ...[
          'quick.orange.rabbit',
          'lazy.orange.elephant',
          'lazy.brown.fox',
          'lazy.pink.rabbit', // matches both of its bindings, delivered once
          'lazy.orange.new.rabbit',
          END,
        ].map(line),
      ]);
      expectNoErrors(q1, q2);
    },
    TEST_TIMEOUT,
  );
});

describe('odd/even: integers_producer / odds / evens (direct integers)', () => {
  beforeEach(() => deleteTopology({ queues: ['odds', 'evens', 'integers'], exchanges: ['integers'] }), HOOK_TIMEOUT);

  it(
    'each consumer prints exactly the integers of its parity the producer sent, in order',
    async () => {
      // odds and evens print nothing when ready: wait for their consumers on the broker.
      const odds = startProgram('odds');
      const evens = startProgram('evens');
      for (const [proc, queue] of [
        [odds, 'odds'],
        [evens, 'evens'],
      ] as const) {
        await waitUntil(`a consumer on queue ${queue}`, async () => {
          if (proc.status) throw new Error(`${proc.label} exited before consuming:\n${proc.describe()}`);
          return (await consumerCount(queue)) === 1;
        });
      }

      const count = 60;
      const produced = await runProgram('integers_producer', ['--count', String(count), '--interval-ms', '0']);
      expect(produced).toMatchObject({ code: 0, stderr: '' });
      expect(produced.lines).toHaveLength(count);
      const integers = produced.lines.map((l) => {
        const m = /^integer: (\d+)$/.exec(l);
        if (!m) throw new Error(`unexpected producer line ${JSON.stringify(l)}`);
        return Number(m[1]);
      });
      for (const i of integers) expect(i >= 1 && i <= 100).toBe(true);

      // An end marker behind the producer's messages in each queue: once it is printed, all are in.
      const end = `END-${tag()}`;
      await publishText('integers', 'odd', end);
      await publishText('integers', 'even', end);
      await waitForLine(odds, `odd integer: ${end}`);
      await waitForLine(evens, `even integer: ${end}`);

      const expectedOdds = integers.filter((i) => i % 2 === 1);
      const expectedEvens = integers.filter((i) => i % 2 === 0);
      // 60 fair draws: both parities occur (all one parity has probability 2^-59).
      expect(expectedOdds.length).toBeGreaterThan(0);
      expect(expectedEvens.length).toBeGreaterThan(0);
      expect(odds.lines).toEqual([...expectedOdds.map((i) => `odd integer: ${i}`), `odd integer: ${end}`]);
      expect(evens.lines).toEqual([...expectedEvens.map((i) => `even integer: ${i}`), `even integer: ${end}`]);
      expectNoErrors(odds, evens);
    },
    TEST_TIMEOUT,
  );
});

describe('tutorial 6: rpc_server / rpc_client (queue rpc_queue)', () => {
  beforeEach(() => deleteTopology({ queues: ['rpc_queue'] }), HOOK_TIMEOUT);

  it(
    'answers fib(n) as the tutorial prints it, on both sides',
    async () => {
      const server = await startReceiver('rpc_server', [], ' [x] Awaiting RPC requests');
      await expectConsumers('rpc_queue', 1);
      await runSender('rpc_client', ['30'], [' [x] Requesting fib(30)', ' [.] Got 832040']);
      await runSender('rpc_client', [], [' [x] Requesting fib(30)', ' [.] Got 832040']);
      await runSender('rpc_client', ['10'], [' [x] Requesting fib(10)', ' [.] Got 55']);
      await waitForLine(server, ' [.] fib(10)');
      expect(server.lines).toEqual([' [x] Awaiting RPC requests', ' [.] fib(30)', ' [.] fib(30)', ' [.] fib(10)']);
      expectNoErrors(server);
    },
    TEST_TIMEOUT,
  );

  it(
    'rejects a bad argument with the usage line',
    async () => {
      const run = await runProgram('rpc_client', ['thirty']);
      expect(run.code).toBe(1);
      expect(run.stderr.trim()).toBe('Usage: rpc_client [n]  (n a whole number)');
    },
    TEST_TIMEOUT,
  );
});

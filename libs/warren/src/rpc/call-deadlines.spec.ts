import { CallDeadlines, type Deadline } from './call-deadlines.js';

interface Call extends Deadline {
  name: string;
}

const call = (name: string): Call => ({ name, at: 0 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('CallDeadlines: one timer for every pending call', () => {
  it('expires each call once its timeout has passed, never before, in order of deadline across timeouts', async () => {
    const expired: { name: string; late: number }[] = [];
    const started = new Map<string, number>();
    const timeouts = new Map<string, number>();
    const deadlines = new CallDeadlines<Call>((c) =>
      expired.push({ name: c.name, late: performance.now() - started.get(c.name)! - timeouts.get(c.name)! }),
    );
    const add = (name: string, timeoutMs: number) => {
      started.set(name, performance.now());
      timeouts.set(name, timeoutMs);
      deadlines.add(call(name), timeoutMs);
    };
    add('a60', 60);
    add('b20', 20);
    add('c60', 60);
    add('d40', 40);
    await sleep(120);
    expect(expired.map((e) => e.name)).toEqual(['b20', 'd40', 'a60', 'c60']);
    for (const e of expired) expect(e.late).toBeGreaterThanOrEqual(0);
  });

  it('a removed call never expires; its neighbours still do', async () => {
    const expired: string[] = [];
    const deadlines = new CallDeadlines<Call>((c) => expired.push(c.name));
    const [first, second, third] = [call('first'), call('second'), call('third')];
    deadlines.add(first, 20);
    deadlines.add(second, 20);
    deadlines.add(third, 20);
    deadlines.remove(first);
    deadlines.remove(third);
    deadlines.remove(third);
    await sleep(60);
    expect(expired).toEqual(['second']);
    deadlines.remove(second);
    expect(expired).toEqual(['second']);
  });

  it('with no call pending no timer is left to keep the process alive', () => {
    const deadlines = new CallDeadlines<Call>(() => undefined);
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const calls = [call('x'), call('y')];
    deadlines.add(calls[0], 10_000);
    deadlines.add(calls[1], 5_000);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before + 1);
    for (const c of calls) deadlines.remove(c);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before);
  });
});

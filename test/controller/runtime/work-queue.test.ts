/** WorkQueue and runWorkers: dedupe, one worker per key, re-adds, per-key backoff, delays, shutdown. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runWorkers, WorkQueue, type WorkResult } from '../../../services/controller/src/runtime/index.js';
import { until as untilWithin } from '../../kube/fixtures/clients.js';

/** Everything here happens within milliseconds; a short limit makes a regression fail fast. */
const until = <T>(probe: () => T | Promise<T>, what: string, limitMs = 5000) =>
  untilWithin(probe, what, limitMs);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  test('a key added twice while queued is handed out once, in FIFO order with the others', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    assert.equal(q.len(), 2);
    assert.equal(await q.get(), 'a');
    assert.equal(await q.get(), 'b');
    assert.equal(q.len(), 0);
  });

  test('a key added while being processed is not handed out again until done(), then exactly once', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = await q.get();
    q.add('a');
    q.add('a');
    assert.equal(q.len(), 0, 'not queued while processing');
    let second: string | undefined;
    void q.get().then((k) => {
      second = k;
    });
    await sleep(5);
    assert.equal(second, undefined, 'a waiting get() does not receive the key being processed');
    q.done(key!);
    await until(() => second, 'the re-added key');
    assert.equal(second, 'a');
    assert.equal(q.len(), 0);
    q.done('a');
    assert.equal(q.len(), 0, 'done() without a re-add does not queue it again');
  });

  test('addRateLimited delays double per failure up to maxDelayMs; forget() resets them', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 50 });
    // Due after `ms` (and not a millisecond before) — the delay the next addRateLimited chose.
    const delayOf = async (add: () => void) => {
      add();
      let got = 0;
      for (; q.len() === 0 && got < 1000; got++) t.mock.timers.tick(1);
      assert.equal(await q.get(), 'k');
      q.done('k');
      return got;
    };
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) delays.push(await delayOf(() => q.addRateLimited('k')));
    assert.deepEqual(delays, [10, 20, 40, 50, 50]);
    assert.equal(q.numRequeues('k'), 5);
    q.forget('k');
    assert.equal(q.numRequeues('k'), 0);
    assert.equal(await delayOf(() => q.addRateLimited('k')), 10);
    assert.equal(q.numRequeues('other'), 0, 'backoff is per key');
  });

  test('addAfter queues the key after the delay; a second addAfter keeps the earlier time', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const q = new WorkQueue();
    q.addAfter('k', 100);
    q.addAfter('k', 30);
    q.addAfter('k', 60);
    t.mock.timers.tick(29);
    assert.equal(q.len(), 0);
    t.mock.timers.tick(1);
    assert.equal(q.len(), 1);
    t.mock.timers.tick(100);
    assert.equal(q.len(), 1, 'the superseded timers do not add it again');
    q.addAfter('now', 0);
    assert.equal(q.len(), 2, 'a zero delay adds at once');
  });

  test('shutdown wakes waiting get() calls with undefined and ignores later adds', async () => {
    const q = new WorkQueue();
    const waiting = [q.get(), q.get()];
    q.addAfter('later', 5);
    q.shutdown();
    assert.deepEqual(await Promise.all(waiting), [undefined, undefined]);
    q.add('x');
    await sleep(10);
    assert.equal(q.len(), 0);
    assert.equal(await q.get(), undefined);
  });
});

describe('runWorkers', () => {
  test('never runs one key in two workers at once, and processes a key re-added meanwhile again', async () => {
    const q = new WorkQueue();
    const active = new Set<string>();
    let overlaps = 0;
    const runs = new Map<string, number>();
    const workers = runWorkers(
      q,
      4,
      async (key) => {
        if (active.has(key)) overlaps++;
        active.add(key);
        runs.set(key, (runs.get(key) ?? 0) + 1);
        await sleep(15);
        active.delete(key);
        return 'done';
      },
      () => {},
    );
    q.add('a');
    q.add('b');
    await until(() => active.has('a'), 'a to start');
    for (let i = 0; i < 5; i++) q.add('a'); // while a is processed: one more run, after this one
    await until(() => runs.get('a') === 2 && active.size === 0 && q.len() === 0, 'the second run of a');
    await sleep(30);
    q.shutdown();
    await workers;
    assert.equal(overlaps, 0);
    assert.deepEqual(Object.fromEntries(runs), { a: 2, b: 1 });
  });

  test("'retry' and errors back off and count; 'done' forgets; requeueAfterMs forgets and comes back later", async () => {
    const q = new WorkQueue({ baseDelayMs: 1 });
    const calls: Array<{ key: string; requeues: number }> = [];
    const errors: Array<[string, unknown]> = [];
    const script: Record<string, Array<WorkResult | Error>> = {
      flaky: ['retry', new Error('boom'), 'retry', 'done'],
      periodic: [{ requeueAfterMs: 20 }, 'done'],
    };
    const started = Date.now();
    let periodicAgainAt = 0;
    const workers = runWorkers(
      q,
      2,
      async (key) => {
        calls.push({ key, requeues: q.numRequeues(key) });
        const next = script[key]!.shift()!;
        if (key === 'periodic' && calls.filter((c) => c.key === key).length === 2)
          periodicAgainAt = Date.now();
        if (next instanceof Error) throw next;
        return next;
      },
      (key, err) => errors.push([key, err]),
    );
    q.add('flaky');
    q.add('periodic');
    await until(() => script.flaky!.length === 0 && script.periodic!.length === 0, 'both scripts to finish');
    q.shutdown();
    await workers;
    assert.deepEqual(
      calls.filter((c) => c.key === 'flaky').map((c) => c.requeues),
      [0, 1, 2, 3],
    );
    assert.equal(q.numRequeues('flaky'), 0, "'done' forgot the failures");
    assert.deepEqual(
      errors.map(([k, e]) => [k, (e as Error).message]),
      [['flaky', 'boom']],
    );
    assert.deepEqual(
      calls.filter((c) => c.key === 'periodic').map((c) => c.requeues),
      [0, 0],
    );
    assert.ok(periodicAgainAt - started >= 19, `requeued after ${periodicAgainAt - started} ms`);
  });

  test('resolves after shutdown once the handlers in flight have finished', async () => {
    const q = new WorkQueue();
    let finished = false;
    const workers = runWorkers(
      q,
      2,
      async () => {
        await sleep(20);
        finished = true;
        return 'done';
      },
      () => {},
    );
    q.add('slow');
    await sleep(5);
    q.shutdown();
    await workers;
    assert.equal(finished, true);
  });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MicroBatcher } from './micro-batcher.js';

function doubling(windowMs: number, maxBatchSize: number) {
  const batches: number[][] = [];
  const batcher = new MicroBatcher<number, number>({
    windowMs,
    maxBatchSize,
    sizeOf: () => 1,
    run: async (xs) => {
      batches.push(xs);
      await new Promise((r) => setTimeout(r, 5));
      return xs.map((x) => 2 * x);
    },
  });
  return { batcher, batches };
}

test('requests within the window share a batch, each gets its own result in order', async () => {
  const { batcher, batches } = doubling(5, 100);
  const results = await Promise.all([1, 2, 3, 4].map((x) => batcher.submit(x)));
  assert.deepEqual(results, [2, 4, 6, 8]);
  assert.deepEqual(batches, [[1, 2, 3, 4]]);
});

test('a full batch runs at once; what queues meanwhile runs next, capped at maxBatchSize', async () => {
  const { batcher, batches } = doubling(1000, 3);
  const results = await Promise.all([1, 2, 3, 4, 5, 6, 7].map((x) => batcher.submit(x)));
  assert.deepEqual(results, [2, 4, 6, 8, 10, 12, 14]);
  assert.deepEqual(batches, [[1, 2, 3], [4, 5, 6], [7]]);
});

test('an aborted request leaves the queue; a failing batch rejects every request in it', async () => {
  const { batcher, batches } = doubling(5, 100);
  const controller = new AbortController();
  const gone = batcher.submit(1, controller.signal);
  const kept = batcher.submit(2);
  controller.abort(new Error('client went away'));
  await assert.rejects(gone, /client went away/);
  assert.equal(await kept, 4);
  assert.deepEqual(batches, [[2]]);

  const failing = new MicroBatcher<number, number>({
    windowMs: 0,
    maxBatchSize: 10,
    sizeOf: () => 1,
    run: async () => {
      throw new Error('model broke');
    },
  });
  const all = await Promise.allSettled([failing.submit(1), failing.submit(2)]);
  assert.deepEqual(
    all.map((r) => r.status),
    ['rejected', 'rejected'],
  );
});

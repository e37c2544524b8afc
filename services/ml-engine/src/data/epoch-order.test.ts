import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batchesPerEpoch, batchIndices, epochOrder, locateStep } from './epoch-order.js';

describe('epoch order and batches', () => {
  it('is a permutation that depends on seed and epoch only', () => {
    const order = epochOrder(50, 2, 42);
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i),
    );
    assert.deepEqual(epochOrder(50, 2, 42), order);
    assert.notDeepEqual(epochOrder(50, 3, 42), order);
    assert.notDeepEqual(epochOrder(50, 2, 43), order);
  });

  it('computes epoch e without having computed earlier epochs (resume)', () => {
    const sequential = [0, 1, 2, 3].map((e) => batchIndices(23, 4, e, 7, true));
    assert.deepEqual(batchIndices(23, 4, 3, 7, true), sequential[3]);
  });

  it('cuts batches in order, keeping or dropping the short last one', () => {
    assert.deepEqual(batchIndices(5, 2, 0, 1, false), [[0, 1], [2, 3], [4]]);
    assert.deepEqual(batchIndices(5, 2, 0, 1, false, { dropLast: true }), [
      [0, 1],
      [2, 3],
    ]);
    assert.equal(batchesPerEpoch(5, 2), 3);
    assert.equal(batchesPerEpoch(5, 2, { dropLast: true }), 2);
    const shuffled = batchIndices(10, 3, 1, 9, true);
    assert.deepEqual(shuffled.flat(), epochOrder(10, 1, 9));
  });

  it('locates a global step for resuming mid-epoch', () => {
    assert.deepEqual(locateStep(0, 10, 3), { epoch: 0, batch: 0 });
    assert.deepEqual(locateStep(9, 10, 3), { epoch: 2, batch: 1 });
    assert.deepEqual(locateStep(9, 10, 3, { dropLast: true }), { epoch: 3, batch: 0 });
    assert.throws(() => locateStep(0, 2, 3, { dropLast: true }), /2 examples make no batch of 3/);
  });

  it('rejects bad sizes naming the argument', () => {
    assert.throws(() => batchIndices(10, 0, 0, 1), /batchSize must be an integer >= 1/);
    assert.throws(() => epochOrder(10, -1, 1), /epoch must be an integer >= 0/);
    assert.throws(() => epochOrder(10, 0, 1.5), /seed must be an integer >= 0/);
  });
});

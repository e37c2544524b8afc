import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GradAccumulator } from './grad-accumulator.js';

describe('GradAccumulator', () => {
  it('sums micro-batches and averages by default', () => {
    const acc = new GradAccumulator();
    const g1 = new Float32Array([1, 2]);
    acc.add(new Map([['w', g1]]));
    g1[0] = 100; // the accumulator copied the first gradient
    acc.add(new Map([['w', new Float32Array([3, 4])]]));
    assert.equal(acc.count, 2);
    assert.deepEqual(acc.finish().get('w'), new Float32Array([2, 3]));
    assert.equal(acc.count, 0);
  });

  it('scales by a given factor and rejects shape changes and empty batches', () => {
    const acc = new GradAccumulator();
    acc.add(new Map([['w', new Float32Array([1])]]));
    acc.add(new Map([['w', new Float32Array([1])]]));
    assert.deepEqual(acc.finish(1).get('w'), new Float32Array([2]));
    assert.throws(() => acc.finish(), /no gradients were accumulated/);
    acc.add(new Map([['w', new Float32Array([1])]]));
    assert.throws(() => acc.add(new Map([['w', new Float32Array(2)]])), /gradient for w has 2 values/);
  });
});

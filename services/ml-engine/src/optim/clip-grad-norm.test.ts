import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clipGradNorm, globalGradNorm } from './clip-grad-norm.js';

const grads = () =>
  new Map([
    ['a', new Float32Array([3, 0])],
    ['b', new Float32Array([4])],
  ]);

describe('clipGradNorm', () => {
  it('measures one norm over all gradients', () => {
    assert.equal(globalGradNorm(grads()), 5);
  });

  it('scales every gradient to the max norm and returns the norm before clipping', () => {
    const g = grads();
    assert.equal(clipGradNorm(g, 1), 5);
    const scale = 1 / (5 + 1e-6);
    assert.ok(Math.abs(g.get('a')![0]! - 3 * scale) < 1e-7);
    assert.ok(Math.abs(g.get('b')![0]! - 4 * scale) < 1e-7);
    assert.ok(Math.abs(globalGradNorm(g) - 1) < 1e-6);
  });

  it('leaves gradients below the limit, or with the limit off (0), untouched', () => {
    for (const max of [10, 0]) {
      const g = grads();
      assert.equal(clipGradNorm(g, max), 5);
      assert.deepEqual(g, grads());
    }
  });

  it('does not spread a non-finite norm into the gradients', () => {
    const g = new Map([['a', new Float32Array([Number.POSITIVE_INFINITY, 1])]]);
    assert.equal(clipGradNorm(g, 1), Number.POSITIVE_INFINITY);
    assert.equal(g.get('a')![1], 1);
    assert.throws(() => clipGradNorm(grads(), -1), /maxGradNorm must be a finite number >= 0/);
  });
});

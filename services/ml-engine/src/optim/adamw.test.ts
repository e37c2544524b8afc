import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdamW } from './adamw.js';

const close = (actual: number, expected: number, tol = 1e-6) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} != ${expected}`);

describe('AdamW', () => {
  it('matches a hand-computed two-step example', () => {
    // lr 0.1, betas (0.9, 0.999), eps 1e-8, gradients 0.5 then -0.25:
    // step 1: m = 0.05, v = 0.00025; m_hat = 0.5, v_hat = 0.25, so p -= 0.1 * 0.5 / 0.5 -> 0.9
    // step 2: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225;
    //         m_hat = 0.02 / 0.19 = 0.1052632, v_hat = 0.00031225 / 0.001999 = 0.1562031,
    //         p -= 0.1 * 0.1052632 / 0.3952254 = 0.0266337 -> 0.8733663
    const opt = new AdamW();
    const params = new Map([['w', new Float32Array([1])]]);
    opt.step(params, new Map([['w', new Float32Array([0.5])]]), 0.1);
    close(params.get('w')![0]!, 0.9);
    opt.step(params, new Map([['w', new Float32Array([-0.25])]]), 0.1);
    close(params.get('w')![0]!, 0.8733663);
    assert.equal(opt.stepCount, 2);
    const state = opt.state();
    close(state.m.get('w')![0]!, 0.02, 1e-8);
    close(state.v.get('w')![0]!, 0.00031225, 1e-9);
  });

  it('decays weights apart from the gradient, but not norms or biases', () => {
    // With weightDecay 0.1 each step first multiplies by 1 - 0.1 * 0.1 = 0.99:
    // 2 * 0.99 - 0.1 = 1.88, then 1.88 * 0.99 - 0.0266337 = 1.8345663.
    const opt = new AdamW({ weightDecay: 0.1 });
    const names = ['model.layers.0.mlp.up_proj.weight', 'model.norm.weight', 'score.bias'];
    const params = new Map(names.map((n) => [n, new Float32Array([2])]));
    for (const g of [0.5, -0.25])
      opt.step(params, new Map(names.map((n) => [n, new Float32Array([g])])), 0.1);
    close(params.get(names[0]!)![0]!, 1.8345663);
    close(params.get(names[1]!)![0]!, 2 - 0.1 - 0.0266337);
    close(params.get(names[2]!)![0]!, 2 - 0.1 - 0.0266337);
  });

  it('takes a custom no-decay rule', () => {
    const opt = new AdamW({ weightDecay: 0.5, noDecay: (name) => name === 'frozen-size' });
    const params = new Map([
      ['frozen-size', new Float32Array([1])],
      ['model.norm.weight', new Float32Array([1])],
    ]);
    opt.step(params, new Map([...params.keys()].map((n) => [n, new Float32Array([0])])), 1);
    assert.equal(params.get('frozen-size')![0], 1);
    assert.equal(params.get('model.norm.weight')![0], 0.5);
  });

  it('resumes from saved state exactly as if never interrupted', () => {
    const grads = [0.3, -0.1, 0.7, 0.2].map((g) => new Map([['w', new Float32Array([g, -g])]]));
    const straight = new Map([['w', new Float32Array([1, 2])]]);
    const a = new AdamW({ weightDecay: 0.01 });
    for (const g of grads) a.step(straight, g, 0.05);

    const first = new Map([['w', new Float32Array([1, 2])]]);
    const b = new AdamW({ weightDecay: 0.01 });
    b.step(first, grads[0]!, 0.05);
    b.step(first, grads[1]!, 0.05);
    const saved = b.state();
    const savedParams = new Map([['w', first.get('w')!.slice()]]);
    b.step(first, grads[2]!, 123); // stepping on must not change the saved copy

    const c = new AdamW({ weightDecay: 0.01 });
    c.loadState(saved);
    c.step(savedParams, grads[2]!, 0.05);
    c.step(savedParams, grads[3]!, 0.05);
    assert.deepEqual(savedParams.get('w'), straight.get('w'));
    assert.equal(c.stepCount, 4);
  });

  it('skips parameters without gradients and rejects mismatched ones', () => {
    const opt = new AdamW();
    const params = new Map([
      ['a', new Float32Array([1])],
      ['b', new Float32Array([1])],
    ]);
    opt.step(params, new Map([['a', new Float32Array([1])]]), 0.1);
    assert.equal(params.get('b')![0], 1);
    assert.throws(
      () => opt.step(params, new Map([['c', new Float32Array([1])]]), 0.1),
      /gradient for c has no parameter/,
    );
    assert.throws(
      () => opt.step(params, new Map([['a', new Float32Array(2)]]), 0.1),
      /gradient for a has 2 values but the parameter has 1/,
    );
    assert.throws(() => opt.step(params, new Map(), Number.NaN), /learning rate must be a finite number/);
    assert.throws(() => new AdamW({ beta2: 1 }), /beta2 must be in \[0, 1\)/);
  });
});

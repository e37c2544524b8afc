import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Sgd } from './sgd.js';

describe('SGD', () => {
  it('with lr 1 moves each weight by exactly minus its gradient', () => {
    const w = new Float32Array([0.5, -1.25, 3, 0]);
    const g = new Float32Array([0.125, 2.5, -0.75, 1e-3]);
    const expected = w.map((x, i) => x - g[i]!);
    const params = new Map([['model.embed_tokens.weight', w]]);
    new Sgd().step(params, new Map([['model.embed_tokens.weight', g]]), 1);
    assert.deepEqual(params.get('model.embed_tokens.weight'), expected);
  });

  it('accumulates momentum as torch does (first buffer = gradient)', () => {
    const opt = new Sgd({ momentum: 0.9 });
    const params = new Map([['w', new Float32Array([0])]]);
    const grad = new Map([['w', new Float32Array([1])]]);
    opt.step(params, grad, 0.1); // buf 1 -> p -0.1
    opt.step(params, grad, 0.1); // buf 1.9 -> p -0.29
    assert.ok(Math.abs(params.get('w')![0]! - -0.29) < 1e-7);
    assert.ok(Math.abs(opt.state().momentum.get('w')![0]! - 1.9) < 1e-7);
  });

  it('resumes momentum from saved state', () => {
    const grads = [1, -2, 0.5].map((g) => new Map([['w', new Float32Array([g])]]));
    const a = new Sgd({ momentum: 0.5 });
    const pa = new Map([['w', new Float32Array([1])]]);
    for (const g of grads) a.step(pa, g, 0.1);
    const b = new Sgd({ momentum: 0.5 });
    const pb = new Map([['w', new Float32Array([1])]]);
    b.step(pb, grads[0]!, 0.1);
    const c = new Sgd({ momentum: 0.5 });
    c.loadState(b.state());
    c.step(pb, grads[1]!, 0.1);
    c.step(pb, grads[2]!, 0.1);
    assert.deepEqual(pb.get('w'), pa.get('w'));
    assert.equal(c.stepCount, 3);
  });

  it('adds L2 decay to the gradient except for norms', () => {
    const opt = new Sgd({ weightDecay: 0.5 });
    const params = new Map([
      ['w', new Float32Array([2])],
      ['model.layers.0.input_layernorm.weight', new Float32Array([2])],
    ]);
    opt.step(params, new Map([...params.keys()].map((n) => [n, new Float32Array([0])])), 1);
    assert.equal(params.get('w')![0], 1);
    assert.equal(params.get('model.layers.0.input_layernorm.weight')![0], 2);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdamW } from './adamw.js';
import {
  adamWStateFromTensors,
  adamWStateToTensors,
  sgdStateFromTensors,
  sgdStateToTensors,
} from './optimizer-state.js';
import { Sgd } from './sgd.js';

describe('optimizer state as tensors', () => {
  it('round-trips AdamW moments under <slot>/<parameter> names', () => {
    const opt = new AdamW();
    const params = new Map([['model.norm.weight', new Float32Array([1, 2])]]);
    opt.step(params, new Map([['model.norm.weight', new Float32Array([0.5, -0.5])]]), 0.1);
    const saved = adamWStateToTensors(opt.state());
    assert.deepEqual([...saved.tensors.keys()], ['m/model.norm.weight', 'v/model.norm.weight']);
    assert.deepEqual(saved.metadata, { optimizer: 'adamw', step: '1' });
    assert.deepEqual(adamWStateFromTensors(saved), opt.state());
  });

  it('round-trips SGD momentum and refuses state of another optimizer', () => {
    const opt = new Sgd({ momentum: 0.9 });
    opt.step(new Map([['w', new Float32Array([1])]]), new Map([['w', new Float32Array([1])]]), 0.1);
    const saved = sgdStateToTensors(opt.state());
    assert.deepEqual(sgdStateFromTensors(saved), opt.state());
    assert.throws(() => adamWStateFromTensors(saved), /saved by "sgd", not adamw/);
    assert.throws(
      () =>
        sgdStateFromTensors({
          tensors: new Map([['x', new Float32Array(1)]]),
          metadata: { optimizer: 'sgd', step: '0' },
        }),
      /tensor "x" is not one of momentum/,
    );
  });
});

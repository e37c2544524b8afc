import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OrtSession } from '../runtime/ort-session.js';
import { GraphBuilder } from './graph-builder.js';

test('shape inference carries symbolic dims through reshapes, matmuls, slices and concats', () => {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', ['batch', 'seq', 8]);
  const heads = g.reshape(x, [0, 0, 2, 4]);
  assert.deepEqual(heads.shape, ['batch', 'seq', 2, 4]);
  const t = g.transpose(heads, [0, 2, 1, 3]);
  assert.deepEqual(t.shape, ['batch', 2, 'seq', 4]);
  const scores = g.matMul(t, g.transpose(t, [0, 1, 3, 2]));
  assert.deepEqual(scores.shape, ['batch', 2, 'seq', 'seq']);
  const rows = g.reshape(x, [-1, 8]);
  assert.deepEqual(rows.shape, ['batch*seq', 8]);
  assert.deepEqual(g.reshape(rows, [0, 2, 4]).shape, ['batch*seq', 2, 4]);
  assert.deepEqual(g.reshape(g.reshape(x, [-1]), [0]).shape, ['8*batch*seq']);
  assert.deepEqual(g.slice(x, [0], [-1], [1]).shape, ['batch', '(seq-1)', 8]);
  assert.deepEqual(g.slice(x, [2], [6], [2]).shape, ['batch', 'seq', 4]);
  const past = g.input('past', 'float32', ['batch', 'past', 8]);
  assert.deepEqual(g.concat([past, x], 1).shape, ['batch', '(past+seq)', 8]);
  assert.deepEqual(g.reduceMean(x, [-1]).shape, ['batch', 'seq', 1]);
  assert.deepEqual(g.reduceSum(x, [0, 2], false).shape, ['seq']);
  const ids = g.input('ids', 'int64', ['batch', 'seq']);
  const w = g.initializer('w', new Float32Array(40), [5, 8]);
  assert.deepEqual(g.gather(w, ids).shape, ['batch', 'seq', 8]);
  assert.deepEqual(
    g.split(x, [3, 5], -1).map((v) => v.shape),
    [
      ['batch', 'seq', 3],
      ['batch', 'seq', 5],
    ],
  );
  assert.equal(g.equal(ids, g.scalar(0, 'int64')).dtype, 'bool');
  assert.deepEqual(g.expand(g.unsqueeze(x, [2]), [1, 1, 3, 1]).shape, ['batch', 'seq', 3, 8]);
  // The fused attention: 3-D q/k/v with heads as attributes, presents [batch, kv_heads, past + seq, head_dim].
  const q = g.input('q', 'float32', ['batch', 'seq', 32]);
  const kv = g.input('kv', 'float32', ['batch', 'seq', 16]);
  const pastKv = g.input('past_kv', 'float32', ['batch', 2, 'past', 8]);
  const att = g.attention(q, kv, kv, { past: { key: pastKv, value: pastKv }, qHeads: 4, kvHeads: 2 });
  assert.deepEqual(att.y.shape, ['batch', 'seq', 32]);
  assert.deepEqual(att.present?.value.shape, ['batch', 2, '(past+seq)', 8]);
  assert.deepEqual(g.attention(q, kv, kv, { qHeads: 4, kvHeads: 2 }).present, undefined);
});

test('bad graphs fail at the op that is wrong, naming it', () => {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', ['batch', 3]);
  const y = g.input('y', 'float32', [4]);
  assert.throws(() => g.add(x, y), /op Add \(Add_\d+\): cannot broadcast \[batch, 3\] with \[4\]/);
  assert.throws(() => g.matMul(x, g.input('w', 'float32', [4, 2])), /op MatMul .*inner dims differ/);
  assert.throws(() => g.reshape(x, [5, -1]), /cannot reshape \[batch, 3\] to \[5,-1\]/);
  assert.throws(() => g.input('x', 'float32', [1]), /the name x is already used/);
  assert.throws(() => g.add(x, g.input('z', 'float64', [3])), /input dtypes float32 and float64 differ/);
  assert.throws(() => g.op('Conv', [x]), /op Conv .*no shape inference for this op; pass shapes/);
  assert.throws(() => new GraphBuilder().build(), /no outputs/);
});

test('small constants are shared, dead nodes and initializers are pruned', () => {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', [2]);
  assert.equal(g.scalar(2), g.scalar(2));
  assert.notEqual(g.scalar(2), g.scalar(2, 'float64'));
  g.exp(g.mul(x, 7)); // dead
  g.output(g.mul(x, 2), 'y');
  const model = g.build();
  assert.deepEqual(
    model.graph.node.map((n) => n.opType),
    ['Mul'],
  );
  assert.equal(model.graph.initializer.length, 1);
  assert.equal(model.irVersion, 10);
  assert.deepEqual(model.opsetImport, [{ domain: '', version: 21 }]);
});

test('the same model code builds float32 and float64 graphs that ORT runs', async () => {
  for (const float of ['float32', 'float64'] as const) {
    const g = new GraphBuilder({ float });
    const x = g.input('x', float, ['n', 3]);
    const w = g.initializer('w', [1, 0, 0, 1, 1, 1], [3, 2]);
    const y = g.softplus(g.sub(g.matMul(x, w), 1));
    g.output(g.reduceSum(y, [1], false), 'y');
    const session = await OrtSession.create(g.build());
    const data =
      float === 'float32' ? Float32Array.from([1, 2, 3, 0, 0, 0]) : Float64Array.from([1, 2, 3, 0, 0, 0]);
    const out = (await session.run({ x: { data, dims: [2, 3] } })).y;
    await session.dispose();
    assert.equal(out?.dtype, float);
    const sp = (v: number) => Math.log1p(Math.exp(v));
    const want = [sp(3) + sp(4), 2 * sp(-1)];
    for (const [i, v] of Array.from(out?.data as Float64Array).entries()) {
      assert.ok(Math.abs(v - (want[i] as number)) < 1e-5);
    }
  }
});

test('names are scoped, outputs can be renamed, and inputs can be outputs', () => {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', [2]);
  const y = g.scope('model.layers.0', () => g.op('Relu', [x], {}, { name: 'act' }));
  assert.equal(y.name, 'model.layers.0/act');
  assert.equal(g.output(y, 'hidden'), 'hidden');
  assert.equal(g.output(x, 'x.copy'), 'x.copy');
  assert.equal(g.output(y, 'hidden.again'), 'hidden.again');
  const graph = g.build().graph;
  assert.deepEqual(
    graph.output.map((o) => o.name),
    ['hidden', 'x.copy', 'hidden.again'],
  );
  // Renaming a computed output costs no node; an input or a second name needs an Identity.
  assert.deepEqual(
    graph.node.map((n) => `${n.opType}:${n.input.join(',')}->${n.output.join(',')}`),
    ['Relu:x->hidden', 'Identity:x->x.copy', 'Identity:hidden->hidden.again'],
  );
});

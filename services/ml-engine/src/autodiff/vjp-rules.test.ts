/**
 * One gradient check per rule (several for rules with several code paths), generated from a table of
 * small graphs. float64 cases must agree with central differences to 1e-6 relative to the gradient's
 * scale; see TOLERANCE for why that is tight yet safe. Softplus has no float64 kernel in ORT's CPU
 * provider, and float32 batched MatMul gradients use ORT's float32-only FusedMatMul, so those are checked
 * in float32 with a looser bound.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRule, type RuleCase } from '../../test/helpers/rule-check.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import { DataType } from '../onnx/onnx-types.js';
import { Rng } from '../random/rng.js';
import { OrtSession } from '../runtime/ort-session.js';
import { backward } from './backward.js';
import { vjpRules } from './vjp-rules.js';

/**
 * float64, h = 1e-5: truncation error h^2 f'''/6 ~ 1e-11 and rounding error ~ eps |f| / h ~ 1e-10 for the
 * O(1)-O(10) losses here, so a correct rule lands near 1e-9; any wrong term is O(1). 1e-6 leaves three
 * orders of margin on both sides.
 * float32, h = 1e-2: rounding of the loss, eps32 |f| / h ~ 6e-8 * 3 / 1e-2 ~ 2e-5, dominates (truncation
 * is ~1e-6); 1e-4 leaves 5x margin.
 */
const TOLERANCE = { float64: 1e-6, float32: 1e-4 } as const;

const ids = { shape: [2, 3], dtype: 'int64', data: [1, 4, 1, 0, 4, 4] } as const;

export const cases: RuleCase[] = [
  // ---- elementwise ----
  {
    op: 'Identity',
    title: 'identity',
    inputs: { x: { shape: [2, 3] } },
    forward: (g, { x }) => g.identity(x!),
  },
  { op: 'Neg', title: 'negation', inputs: { x: { shape: [2, 3] } }, forward: (g, { x }) => g.neg(x!) },
  {
    op: 'Add',
    title: 'broadcast of a bias over rows',
    inputs: { x: { shape: [2, 3] }, b: { shape: [3] } },
    forward: (g, { x, b }) => g.add(x!, b!),
  },
  {
    op: 'Add',
    title: 'symbolic batch plus a [1, 3] row',
    inputs: { x: { shape: [2, 3], dims: ['batch', 3] }, b: { shape: [1, 3] } },
    forward: (g, { x, b }) => g.add(x!, b!),
  },
  {
    op: 'Sub',
    title: 'two-way broadcast [2,1,3] - [4,1]',
    inputs: { x: { shape: [2, 1, 3] }, y: { shape: [4, 1] } },
    forward: (g, { x, y }) => g.sub(x!, y!),
  },
  {
    op: 'Mul',
    title: 'broadcast [2,3] * [2,1]',
    inputs: { x: { shape: [2, 3] }, y: { shape: [2, 1] } },
    forward: (g, { x, y }) => g.mul(x!, y!),
  },
  {
    op: 'Mul',
    title: 'a value times itself',
    inputs: { x: { shape: [2, 3] } },
    forward: (g, { x }) => g.mul(x!, x!),
  },
  {
    op: 'Div',
    title: 'broadcast [2,3] / [3]',
    inputs: { x: { shape: [2, 3] }, y: { shape: [3], dist: 'positive' } },
    forward: (g, { x, y }) => g.div(x!, y!),
  },
  {
    op: 'Sum',
    title: 'three broadcast terms',
    inputs: { x: { shape: [2, 3] }, y: { shape: [3] }, z: { shape: [2, 1] } },
    forward: (g, { x, y, z }) => g.sum([x!, y!, z!]),
  },
  { op: 'Pow', title: 'square', inputs: { x: { shape: [2, 3] } }, forward: (g, { x }) => g.pow(x!, 2) },
  {
    op: 'Pow',
    title: 'constant exponent 1.5',
    inputs: { x: { shape: [2, 3], dist: 'positive' } },
    forward: (g, { x }) => g.pow(x!, 1.5),
  },
  {
    op: 'Pow',
    title: 'tensor exponent',
    inputs: { x: { shape: [2, 3], dist: 'positive' }, p: { shape: [3] } },
    forward: (g, { x, p }) => g.pow(x!, p!),
  },
  {
    op: 'Sqrt',
    title: 'sqrt',
    inputs: { x: { shape: [2, 3], dist: 'positive' } },
    forward: (g, { x }) => g.sqrt(x!),
  },
  {
    op: 'Reciprocal',
    title: 'reciprocal',
    inputs: { x: { shape: [2, 3], dist: 'positive' } },
    forward: (g, { x }) => g.reciprocal(x!),
  },
  { op: 'Exp', title: 'exp', inputs: { x: { shape: [2, 3] } }, forward: (g, { x }) => g.exp(x!) },
  {
    op: 'Log',
    title: 'log',
    inputs: { x: { shape: [2, 3], dist: 'positive' } },
    forward: (g, { x }) => g.log(x!),
  },
  { op: 'Tanh', title: 'tanh', inputs: { x: { shape: [2, 3] } }, forward: (g, { x }) => g.tanh(x!) },
  { op: 'Sigmoid', title: 'sigmoid', inputs: { x: { shape: [2, 3] } }, forward: (g, { x }) => g.sigmoid(x!) },
  {
    op: 'Relu',
    title: 'relu',
    inputs: { x: { shape: [2, 3], dist: 'away' } },
    forward: (g, { x }) => g.relu(x!),
  },
  {
    op: 'Abs',
    title: 'abs',
    inputs: { x: { shape: [2, 3], dist: 'away' } },
    forward: (g, { x }) => g.abs(x!),
  },
  {
    op: 'Softplus',
    title: 'softplus (float32: no float64 kernel in ORT)',
    float: 'float32',
    inputs: { x: { shape: [2, 3] } },
    forward: (g, { x }) => g.softplus(x!),
  },
  {
    op: 'Where',
    title: 'mask selecting between a tensor and a broadcast row',
    inputs: {
      c: { shape: [2, 3], dtype: 'bool', data: [1, 0, 1, 0, 0, 1] },
      x: { shape: [2, 3] },
      y: { shape: [3] },
    },
    forward: (g, { c, x, y }) => g.where(c!, x!, y!),
  },
  {
    op: 'Cast',
    title: 'float cast, and an int path that carries no gradient',
    inputs: { x: { shape: [2, 3] }, k: { shape: [2, 3], dtype: 'int64', data: [1, 2, 3, 4, 5, 6] } },
    forward: (g, { x, k }) => g.mul(g.op('Cast', [x!], { to: DataType.DOUBLE }), g.cast(k!, 'float64')),
  },

  // ---- linear algebra and normalisation ----
  {
    op: 'MatMul',
    title: '2-D @ 2-D (two Gemms)',
    inputs: { a: { shape: [3, 4] }, b: { shape: [4, 2] } },
    forward: (g, { a, b }) => g.matMul(a!, b!),
  },
  {
    op: 'MatMul',
    title: 'batched activations @ 2-D weight (one folded Gemm)',
    inputs: { a: { shape: [2, 3, 4] }, w: { shape: [4, 5] } },
    forward: (g, { a, w }) => g.matMul(a!, w!),
  },
  {
    op: 'MatMul',
    title: 'symbolic batch and seq @ 2-D weight',
    inputs: { a: { shape: [2, 3, 4], dims: ['batch', 'seq', 4] }, w: { shape: [4, 5] } },
    forward: (g, { a, w }) => g.matMul(a!, w!),
  },
  {
    op: 'MatMul',
    title: 'batched @ batched (attention scores)',
    inputs: { a: { shape: [2, 3, 4] }, b: { shape: [2, 4, 5] } },
    forward: (g, { a, b }) => g.matMul(a!, b!),
  },
  {
    op: 'MatMul',
    title: 'broadcast batch dims [2,1,3,4] @ [3,4,2]',
    inputs: { a: { shape: [2, 1, 3, 4] }, b: { shape: [3, 4, 2] } },
    forward: (g, { a, b }) => g.matMul(a!, b!),
  },
  {
    op: 'MatMul',
    title: '2-D @ batched',
    inputs: { a: { shape: [3, 4] }, b: { shape: [2, 4, 5] } },
    forward: (g, { a, b }) => g.matMul(a!, b!),
  },
  {
    op: 'MatMul',
    title: 'vector @ batched and batched @ vector',
    inputs: { v: { shape: [4] }, a: { shape: [2, 4, 3] }, u: { shape: [3] } },
    forward: (g, { v, a, u }) => [g.matMul(v!, a!), g.matMul(a!, u!)],
  },
  // float32 batched MatMul gradients take the FusedMatMul path (no float64 kernel), so check it there.
  // The loss is linear in each operand, so central differences are exact at any step: a large step
  // shrinks the float32 rounding error of the loss instead.
  {
    op: 'MatMul',
    title: 'float32: batched @ batched through FusedMatMul',
    float: 'float32',
    step: 0.5,
    inputs: { a: { shape: [2, 3, 4] }, b: { shape: [2, 4, 5] } },
    forward: (g, { a, b }) => g.matMul(a!, b!),
  },
  {
    op: 'MatMul',
    title: 'float32: broadcast 5-D (grouped-query attention) through FusedMatMul',
    float: 'float32',
    step: 0.5,
    inputs: { a: { shape: [2, 2, 3, 3, 4] }, b: { shape: [2, 2, 1, 4, 3] } },
    forward: (g, { a, b }) => g.matMul(a!, b!),
  },
  {
    op: 'MatMul',
    title: 'float32: batched @ 2-D weight',
    float: 'float32',
    step: 0.5,
    inputs: { a: { shape: [2, 3, 4] }, w: { shape: [4, 5] } },
    forward: (g, { a, w }) => g.matMul(a!, w!),
  },
  ...[false, true].flatMap((transA) =>
    [false, true].map(
      (transB): RuleCase => ({
        op: 'Gemm',
        title: `transA=${+transA} transB=${+transB}, alpha, beta, broadcast bias`,
        inputs: {
          a: { shape: transA ? [4, 3] : [3, 4] },
          b: { shape: transB ? [2, 4] : [4, 2] },
          c: { shape: [2] },
        },
        forward: (g, { a, b, c }) => g.gemm(a!, b!, c!, { transA, transB, alpha: 0.7, beta: 1.3 }),
      }),
    ),
  ),
  {
    op: 'Softmax',
    title: 'last axis',
    inputs: { x: { shape: [2, 3, 4] } },
    forward: (g, { x }) => g.softmax(x!),
  },
  {
    op: 'Softmax',
    title: 'middle axis',
    inputs: { x: { shape: [2, 3, 4] } },
    forward: (g, { x }) => g.softmax(x!, 1),
  },
  {
    op: 'LogSoftmax',
    title: 'last axis',
    inputs: { x: { shape: [2, 3, 4] } },
    forward: (g, { x }) => g.logSoftmax(x!),
  },

  // ---- reductions ----
  {
    op: 'ReduceSum',
    title: 'one axis, keepdims',
    inputs: { x: { shape: [2, 3, 4] } },
    forward: (g, { x }) => g.reduceSum(x!, [1]),
  },
  {
    op: 'ReduceSum',
    title: 'two axes, no keepdims',
    inputs: { x: { shape: [2, 3, 4] } },
    forward: (g, { x }) => g.reduceSum(x!, [0, -1], false),
  },
  {
    op: 'ReduceSum',
    title: 'all axes of a symbolic tensor',
    inputs: { x: { shape: [2, 3], dims: ['batch', 3] } },
    forward: (g, { x }) => g.reduceSum(x!, [], false),
  },
  {
    op: 'ReduceMean',
    title: 'last axis, keepdims (RMSNorm)',
    inputs: { x: { shape: [2, 3, 4] } },
    forward: (g, { x }) => g.reduceMean(x!, [-1]),
  },
  {
    op: 'ReduceMean',
    title: 'no keepdims',
    inputs: { x: { shape: [2, 3, 4] } },
    forward: (g, { x }) => g.reduceMean(x!, [0, 2], false),
  },
  {
    op: 'ReduceMean',
    title: 'over a symbolic batch axis (counted at run time)',
    inputs: { x: { shape: [3, 2], dims: ['batch', 2] } },
    forward: (g, { x }) => g.reduceMean(x!, [0, 1], false),
  },
  {
    op: 'ReduceMax',
    title: 'one axis, no keepdims',
    inputs: { x: { shape: [2, 3, 4] } },
    forward: (g, { x }) => g.reduceMax(x!, [1], false),
  },

  // ---- shape manipulation ----
  {
    op: 'Reshape',
    title: 'static',
    inputs: { x: { shape: [2, 3, 4] } },
    forward: (g, { x }) => g.reshape(x!, [6, 4]),
  },
  {
    op: 'Reshape',
    title: 'split heads of symbolic [batch, seq, 4]',
    inputs: { x: { shape: [2, 3, 4], dims: ['batch', 'seq', 4] } },
    forward: (g, { x }) => g.reshape(x!, [0, 0, 2, 2]),
  },
  {
    op: 'Reshape',
    title: 'merge symbolic batch and seq',
    inputs: { x: { shape: [2, 3, 4], dims: ['batch', 'seq', 4] } },
    forward: (g, { x }) => g.reshape(x!, [-1, 4]),
  },
  {
    op: 'Transpose',
    title: 'swap leading axes',
    inputs: { x: { shape: [2, 3, 4] } },
    forward: (g, { x }) => g.transpose(x!, [1, 0, 2]),
  },
  {
    op: 'Transpose',
    title: 'rotate axes',
    inputs: { x: { shape: [2, 3, 4] } },
    forward: (g, { x }) => g.transpose(x!, [2, 0, 1]),
  },
  {
    op: 'Unsqueeze',
    title: 'first and last axes',
    inputs: { x: { shape: [2, 3] } },
    forward: (g, { x }) => g.unsqueeze(x!, [0, -1]),
  },
  {
    op: 'Squeeze',
    title: 'given axis',
    inputs: { x: { shape: [2, 1, 3] } },
    forward: (g, { x }) => g.squeeze(x!, [1]),
  },
  {
    op: 'Squeeze',
    title: 'all unit axes',
    inputs: { x: { shape: [1, 2, 1] } },
    forward: (g, { x }) => g.op('Squeeze', [x!]),
  },
  {
    op: 'Expand',
    title: '[3,1] to [2,3,4]',
    inputs: { x: { shape: [3, 1] } },
    forward: (g, { x }) => g.expand(x!, [2, 3, 4]),
  },
  {
    op: 'Concat',
    title: 'middle axis',
    inputs: { x: { shape: [2, 1, 3] }, y: { shape: [2, 2, 3] } },
    forward: (g, { x, y }) => g.concat([x!, y!], 1),
  },
  {
    op: 'Split',
    title: 'last axis, one part unused',
    inputs: { x: { shape: [2, 5] } },
    forward: (g, { x }) => g.split(x!, [2, 3], -1)[1]!,
  },
  {
    op: 'Split',
    title: 'both parts used',
    inputs: { x: { shape: [4, 3] } },
    forward: (g, { x }) => g.split(x!, [1, 3], 0),
  },
  {
    op: 'Slice',
    title: 'inner columns',
    inputs: { x: { shape: [3, 5] } },
    forward: (g, { x }) => g.slice(x!, [1], [4], [1]),
  },
  {
    op: 'Slice',
    title: 'negative bounds on two axes',
    inputs: { x: { shape: [3, 5] } },
    forward: (g, { x }) => g.slice(x!, [-2, 0], [3, -1]),
  },
  {
    op: 'Slice',
    title: 'drop the last position of a symbolic seq',
    inputs: { x: { shape: [2, 4, 3], dims: ['batch', 'seq', 3] } },
    forward: (g, { x }) => g.slice(x!, [0], [-1], [1]),
  },

  // ---- indexing ----
  {
    op: 'Gather',
    title: 'embedding lookup with repeated ids',
    inputs: { w: { shape: [5, 3] }, ids },
    forward: (g, { w, ids: i }) => g.gather(w!, i!),
  },
  {
    op: 'Gather',
    title: 'rows of a symbolic-length matrix (a reward head picking last positions)',
    inputs: { x: { shape: [6, 3], dims: ['rows', 3] }, i: { shape: [2], dtype: 'int64', data: [5, 2] } },
    forward: (g, { x, i }) => g.gather(x!, i!),
  },
  {
    op: 'Gather',
    title: 'axis 0 of a rank-3 table with repeated ids',
    inputs: { w: { shape: [5, 2, 3] }, ids },
    forward: (g, { w, ids: i }) => g.gather(w!, i!),
  },
  {
    op: 'Gather',
    title: 'axis 1 with a scalar index',
    inputs: { x: { shape: [2, 4, 3] }, i: { shape: [], dtype: 'int64', data: [2] } },
    forward: (g, { x, i }) => g.gather(x!, i!, 1),
  },
  {
    op: 'Gather',
    title: 'axis 1 with 2-D indices',
    inputs: { x: { shape: [2, 4, 3] }, i: { shape: [2, 2], dtype: 'int64', data: [0, 3, 3, 1] } },
    forward: (g, { x, i }) => g.gather(x!, i!, 1),
  },
  {
    op: 'GatherElements',
    title: 'target-token log-probs',
    inputs: { x: { shape: [2, 3, 5] }, t: { shape: [2, 3, 1], dtype: 'int64', data: [4, 0, 4, 2, 2, 1] } },
    forward: (g, { x, t }) => g.gatherElements(x!, t!, 2),
  },
];

test('every gradient rule has a gradient-check case', () => {
  const covered = new Set(cases.map((c) => c.op));
  assert.deepEqual(
    Object.keys(vjpRules).filter((op) => !covered.has(op)),
    [],
  );
});

cases.forEach((c, i) => {
  test(`gradient of ${c.op}: ${c.title}`, async () => {
    const tol = TOLERANCE[c.float ?? 'float64'];
    for (const r of await checkRule(c, 1000 + i)) {
      assert.ok(r.scale > 1e-3, `${r.name}: numeric gradient is ~0 (${r.scale}); the case checks nothing`);
      assert.ok(r.relError <= tol, `${r.name}: relative error ${r.relError.toExponential(2)} > ${tol}`);
    }
  });
});

test('the embedding gradient sums repeated ids exactly, the same on every run, on every thread', async () => {
  // Many rows on few ids: with ScatterND 'add' (the rule before) ORT's threads lost updates here, so
  // repeats gave different, wrong sums. The sum must be the sequential float32 one, bit for bit.
  const [vocab, dim, rows] = [8, 64, 4096];
  const rng = new Rng(11);
  const ids = BigInt64Array.from({ length: rows }, () => BigInt(rng.int(vocab)));
  const dy = Float32Array.from({ length: rows * dim }, () => rng.normal());
  const g = new GraphBuilder({ float: 'float32' });
  const w = g.input('w', 'float32', [vocab, dim]);
  const i = g.input('ids', 'int64', ['rows']);
  const seed = g.input('dy', 'float32', ['rows', dim]);
  const [grad] = backward(g, g.reduceSum(g.mul(g.gather(w, i), seed), [0, 1], false), [w]);
  g.output(grad!, 'grad');
  const expected = new Float32Array(vocab * dim);
  for (let r = 0; r < rows; r++) {
    const v = Number(ids[r]);
    for (let d = 0; d < dim; d++)
      expected[v * dim + d] = Math.fround((expected[v * dim + d] as number) + (dy[r * dim + d] as number));
  }
  const feeds = {
    w: { data: new Float32Array(vocab * dim), dims: [vocab, dim] },
    ids: { data: ids, dims: [rows] },
    dy: { data: dy, dims: [rows, dim] },
  };
  for (const threads of [1, 2, 4]) {
    const session = await OrtSession.create(g.build(), { threads });
    for (let k = 0; k < 8; k++)
      assert.deepEqual((await session.run(feeds)).grad?.data, expected, `${threads} threads, run ${k + 1}`);
    await session.dispose();
  }
});

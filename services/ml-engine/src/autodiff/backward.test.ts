/**
 * The walker on composite graphs, where values fan out to several consumers and gradients must be summed:
 * an MLP with a shared weight and softmax cross-entropy, an attention block with causal and padding
 * masks (Where and Add), a tied-embedding LM loss (Gather + MatMul on one weight), a Bradley-Terry loss.
 * Same float64 tolerance as the per-rule checks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphBuilder } from '../onnx/graph-builder.js';
import type { Value } from '../onnx/graph-types.js';
import { Rng } from '../random/rng.js';
import { OrtSession, type TensorValue } from '../runtime/ort-session.js';
import { backward } from './backward.js';
import { checkGradients } from './gradient-check.js';

const TOLERANCE = 1e-6;
const rng = new Rng(7);
const normal = (dims: number[], scale = 1): TensorValue => ({
  data: Float64Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => scale * rng.normal()),
  dims,
});
const float = (values: number[], dims: number[]): TensorValue => ({ data: Float64Array.from(values), dims });
const int64 = (values: number[], dims: number[]): TensorValue => ({
  data: BigInt64Array.from(values.map(BigInt)),
  dims,
});

async function expectGradientsMatch(
  build: Parameters<typeof checkGradients>[0],
  feeds: Record<string, TensorValue>,
): Promise<void> {
  for (const r of await checkGradients(build, feeds)) {
    assert.ok(r.scale > 1e-4, `${r.name}: gradient is ~0`);
    assert.ok(r.relError <= TOLERANCE, `${r.name}: relative error ${r.relError.toExponential(2)}`);
  }
}

test('2-layer MLP with a weight used twice and softmax cross-entropy', async () => {
  await expectGradientsMatch(
    (g) => {
      const x = g.input('x', 'float64', ['batch', 3]);
      const [w1, b1, w2, b2, wo] = [
        g.input('w1', 'float64', [3, 5]),
        g.input('b1', 'float64', [5]),
        g.input('w2', 'float64', [5, 5]),
        g.input('b2', 'float64', [5]),
        g.input('wo', 'float64', [5, 3]),
      ] as Value[];
      const onehot = g.input('onehot', 'float64', ['batch', 3]);
      const rowMask = g.input('row.mask', 'float64', ['batch', 1]);
      const h1 = g.tanh(g.add(g.matMul(x, w1!), b1!));
      const h2 = g.sigmoid(g.add(g.matMul(h1, w2!), b2!));
      const h3 = g.matMul(h2, w2!);
      const p = g.softmax(g.matMul(h3, wo!));
      const nll = g.neg(g.reduceSum(g.mul(onehot, g.log(p)), [1]));
      const loss = g.div(g.reduceSum(g.mul(nll, rowMask), [], false), g.reduceSum(rowMask, [], false));
      return { loss, wrt: [x, w1, b1, w2, b2, wo] as Value[] };
    },
    {
      x: normal([4, 3]),
      w1: normal([3, 5]),
      b1: normal([5]),
      w2: normal([5, 5]),
      b2: normal([5]),
      wo: normal([5, 3]),
      onehot: float([1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1], [4, 3]),
      'row.mask': float([1, 1, 0, 1], [4, 1]),
    },
  );
});

test('attention block: causal mask by Where, padding mask by Add, residual and RMSNorm', async () => {
  const [batch, seq, heads, dh] = [2, 4, 2, 3];
  const d = heads * dh;
  const causal = Array.from({ length: seq * seq }, (_, i) => (i % seq <= Math.floor(i / seq) ? 1 : 0));
  await expectGradientsMatch(
    (g) => {
      const x = g.input('x', 'float64', ['batch', 'seq', d]);
      const [wq, wk, wv, wo] = ['wq', 'wk', 'wv', 'wo'].map((n) => g.input(n, 'float64', [d, d])) as Value[];
      const gamma = g.input('gamma', 'float64', [d]);
      const allowed = g.input('causal', 'bool', ['seq', 'seq']);
      const padding = g.input('padding', 'float64', ['batch', 1, 1, 'seq']);
      const split = (t: Value) => g.transpose(g.reshape(g.matMul(x, t), [0, 0, heads, dh]), [0, 2, 1, 3]);
      const [q, k, v] = [split(wq!), split(wk!), split(wv!)];
      const scores = g.mul(g.matMul(q, g.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(dh));
      const masked = g.add(g.where(allowed, scores, -1e9), padding);
      const attn = g.matMul(g.softmax(masked), v);
      const merged = g.reshape(g.transpose(attn, [0, 2, 1, 3]), [0, 0, d]);
      const y = g.add(x, g.matMul(merged, wo!));
      const rms = g.reciprocal(g.sqrt(g.add(g.reduceMean(g.pow(y, 2), [-1]), 1e-6)));
      const out = g.mul(g.mul(y, rms), gamma);
      const r = g.input('r', 'float64', ['batch', 'seq', d]);
      return { loss: g.reduceSum(g.mul(out, r), [], false), wrt: [x, wq, wk, wv, wo, gamma] as Value[] };
    },
    {
      x: normal([batch, seq, d]),
      wq: normal([d, d], 0.5),
      wk: normal([d, d], 0.5),
      wv: normal([d, d], 0.5),
      wo: normal([d, d], 0.5),
      gamma: normal([d]),
      causal: { data: Uint8Array.from(causal), dims: [seq, seq] },
      padding: float([0, 0, 0, 0, 0, 0, 0, -1e9], [batch, 1, 1, seq]),
      r: normal([batch, seq, d]),
    },
  );
});

test('tied embeddings: Gather and MatMul gradients of one weight are summed (masked LM loss)', async () => {
  await expectGradientsMatch(
    (g) => {
      const ids = g.input('ids', 'int64', ['batch', 'seq']);
      const targets = g.input('targets', 'int64', ['batch', 'seq', 1]);
      const mask = g.input('mask', 'float64', ['batch', 'seq', 1]);
      const emb = g.input('emb', 'float64', [7, 4]);
      const w = g.input('w', 'float64', [4, 4]);
      const h = g.tanh(g.matMul(g.gather(emb, ids), w));
      const logp = g.logSoftmax(g.matMul(h, g.transpose(emb, [1, 0])));
      const picked = g.gatherElements(logp, targets, 2);
      const loss = g.neg(g.div(g.reduceSum(g.mul(picked, mask), [], false), g.reduceSum(mask, [], false)));
      return { loss, wrt: [emb, w] };
    },
    {
      ids: int64([1, 5, 1, 6, 0, 5], [2, 3]),
      targets: int64([5, 1, 6, 0, 5, 2], [2, 3, 1]),
      mask: float([1, 1, 1, 1, 1, 0], [2, 3, 1]),
      emb: normal([7, 4]),
      w: normal([4, 4]),
    },
  );
});

test('Bradley-Terry loss -log sigmoid(r_w - r_l) through softplus', async () => {
  await expectGradientsMatch(
    (g) => {
      const chosen = g.input('chosen', 'float64', ['pairs', 3]);
      const rejected = g.input('rejected', 'float64', ['pairs', 3]);
      const head = g.input('head', 'float64', [3, 1]);
      const margin = g.sub(g.matMul(chosen, head), g.matMul(rejected, head));
      return { loss: g.reduceMean(g.softplus(g.neg(margin)), [0, 1], false), wrt: [chosen, rejected, head] };
    },
    { chosen: normal([4, 3]), rejected: normal([4, 3]), head: normal([3, 1]) },
  );
});

test('a value used three times gets one Sum node, and stopAt cuts a path', async () => {
  const g = new GraphBuilder({ float: 'float64' });
  const x = g.input('x', 'float64', [3]);
  const frozen = g.identity(x);
  const y = g.sum([g.mul(x, 2), g.exp(x), g.mul(x, frozen)]);
  const loss = g.reduceSum(y, [], false);
  const [dx] = backward(g, loss, [x], { stopAt: [frozen] });
  assert.equal(g.nodes.filter((n) => n.name.startsWith('grad/') && n.opType === 'Sum').length, 1);
  g.output(dx as Value, 'dx');
  const session = await OrtSession.create(g.build());
  const xs = [0.5, -1, 2];
  const out = await session.run({ x: float(xs, [3]) });
  await session.dispose();
  // d/dx of 2x + e^x + x * stop(x) is 2 + e^x + x.
  Array.from(out.dx?.data as Float64Array).forEach((v, i) => {
    const xi = xs[i] as number;
    assert.ok(Math.abs(v - (2 + Math.exp(xi) + xi)) < 1e-12);
  });
});

test('errors name the op without a rule, the unused weight and a non-scalar loss', () => {
  const g = new GraphBuilder({ float: 'float64' });
  const x = g.input('x', 'float64', [3]);
  const w = g.input('w', 'float64', [3]);
  const erf = g.op('Erf', [x], {}, { name: 'the_erf' });
  assert.throws(
    () => backward(g, g.reduceSum(erf, [], false), [x]),
    /^Error: no gradient rule for op Erf \(the_erf\)$/,
  );
  const loss = g.reduceSum(g.exp(x), [], false);
  assert.throws(() => backward(g, loss, [w]), /does not depend on w; pass unused: 'zeros'/);
  const [dw] = backward(g, loss, [w], { unused: 'zeros' });
  assert.deepEqual(dw?.shape, [3]);
  assert.throws(() => backward(g, g.exp(x), [x]), /has shape \[3\]; reduce it to one element or pass a seed/);
  const ids = g.input('ids', 'int64', [3]);
  assert.throws(() => backward(g, loss, [ids]), /cannot differentiate with respect to int64 ids/);
});

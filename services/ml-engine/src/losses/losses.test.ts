/** Forward values of the loss pieces, run in ONNX Runtime, against the formulas computed directly. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphBuilder } from '../onnx/graph-builder.js';
import { OrtSession } from '../runtime/ort-session.js';
import { bradleyTerryLoss } from './bradley-terry.js';
import { maskedNll, sequenceLogprobs, tokenLogprobs } from './causal-lm.js';
import { type DpoOptions, dpoLoss } from './dpo.js';

const softplus = (x: number): number => Math.log1p(Math.exp(x));
const close = (a: number, b: number, msg: string): void =>
  assert.ok(Math.abs(a - b) < 1e-9, `${msg}: ${a} vs ${b}`);

async function run(
  g: GraphBuilder,
  feeds: Record<string, { data: Float64Array | BigInt64Array; dims: number[] }>,
): Promise<Record<string, number[]>> {
  const session = await OrtSession.create(g.build());
  const out = await session.run(feeds);
  await session.dispose();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Array.from(v.data as Float64Array)]));
}

test('token log-probs, sequence log-probs and masked NLL', async () => {
  const g = new GraphBuilder({ float: 'float64' });
  const logits = g.input('logits', 'float64', [2, 3, 4]);
  const labels = g.input('labels', 'int64', [2, 3]);
  const mask = g.input('mask', 'float64', [2, 3]);
  const tl = tokenLogprobs(g, logits, labels);
  g.output(tl, 'tok');
  g.output(sequenceLogprobs(g, tl, mask), 'seq');
  g.output(maskedNll(g, tl, mask).loss, 'nll');
  const L = Float64Array.from({ length: 24 }, (_, i) => Math.sin(i * 1.3) * 2);
  const y = [1, 3, 0, 2, 2, 1];
  const m = [1, 1, 0, 0, 1, 1];
  const out = await run(g, {
    logits: { data: L, dims: [2, 3, 4] },
    labels: { data: BigInt64Array.from(y.map(BigInt)), dims: [2, 3] },
    mask: { data: Float64Array.from(m), dims: [2, 3] },
  });
  const expected = y.map((label, r) => {
    const row = Array.from(L.subarray(r * 4, r * 4 + 4));
    const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
    return (row[label] as number) - lse;
  });
  for (const [i, e] of expected.entries()) close(out.tok?.[i] as number, e, `token ${i}`);
  close(out.seq?.[0] as number, (expected[0] as number) + (expected[1] as number), 'seq 0');
  close(out.seq?.[1] as number, (expected[4] as number) + (expected[5] as number), 'seq 1');
  const nll = -expected.reduce((s, e, i) => s + e * (m[i] as number), 0) / 4;
  close(out.nll?.[0] as number, nll, 'nll');
});

test('Bradley-Terry loss and accuracy', async () => {
  const g = new GraphBuilder({ float: 'float64' });
  const scores = g.input('scores', 'float64', [6]);
  const bt = bradleyTerryLoss(g, scores);
  g.output(bt.loss, 'loss');
  g.output(bt.metrics.accuracy as never, 'accuracy');
  const s = [2, -1, 0.5, 1, 1.5, 0];
  const out = await run(g, { scores: { data: Float64Array.from(s), dims: [6] } });
  const diffs = [2 - 1, -1 - 1.5, 0.5 - 0];
  close(out.loss?.[0] as number, diffs.reduce((a, d) => a + softplus(-d), 0) / 3, 'loss');
  close(out.accuracy?.[0] as number, 2 / 3, 'accuracy');
});

for (const o of [
  { beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0, nllWeight: 0 },
  { beta: 0.5, lossType: 'sigmoid', labelSmoothing: 0.1, nllWeight: 1 },
  { beta: 0.2, lossType: 'ipo', labelSmoothing: 0, nllWeight: 0 },
  { beta: 0.3, lossType: 'hinge', labelSmoothing: 0, nllWeight: 0 },
] satisfies DpoOptions[]) {
  test(`DPO ${o.lossType} (beta ${o.beta}, smoothing ${o.labelSmoothing}, nll ${o.nllWeight})`, async () => {
    const g = new GraphBuilder({ float: 'float64' });
    const pol = g.input('pol', 'float64', [4]);
    const ref = g.input('ref', 'float64', [4]);
    const tok = g.input('tok', 'float64', [4, 2]);
    const nm = g.input('nm', 'float64', [4, 2]);
    const r = dpoLoss(g, o, { policyLogps: pol, referenceLogps: ref, tokenLogps: tok, nllMask: nm });
    g.output(r.loss, 'loss');
    g.output(r.metrics.margin as never, 'margin');
    g.output(r.metrics.accuracy as never, 'accuracy');
    const p = [-3, -4, -5, -2];
    const q = [-3.5, -3.8, -4.5, -3];
    const tk = [-1, -2, -0.5, -0.5, -3, -1, -1, -1];
    const mk = [1, 1, 1, 0, 0, 0, 0, 0];
    const out = await run(g, {
      pol: { data: Float64Array.from(p), dims: [4] },
      ref: { data: Float64Array.from(q), dims: [4] },
      tok: { data: Float64Array.from(tk), dims: [4, 2] },
      nm: { data: Float64Array.from(mk), dims: [4, 2] },
    });
    const h = [0, 1].map(
      (i) => (p[i] as number) - (q[i] as number) - ((p[i + 2] as number) - (q[i + 2] as number)),
    );
    const per = h.map((x) => {
      const bh = o.beta * x;
      if (o.lossType === 'ipo') return (x - 1 / (2 * o.beta)) ** 2;
      if (o.lossType === 'hinge') return Math.max(0, 1 - bh);
      return (1 - o.labelSmoothing) * softplus(-bh) + o.labelSmoothing * softplus(bh);
    });
    let loss = (per[0] as number) / 2 + (per[1] as number) / 2;
    if (o.nllWeight > 0) loss += (o.nllWeight * (1 + 2 + 0.5)) / 3;
    close(out.loss?.[0] as number, loss, 'loss');
    close(out.margin?.[0] as number, (o.beta * ((h[0] as number) + (h[1] as number))) / 2, 'margin');
    close(out.accuracy?.[0] as number, h.filter((x) => x > 0).length / 2, 'accuracy');
  });
}

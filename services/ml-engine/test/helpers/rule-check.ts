/**
 * The harness behind the per-rule gradient tests: a case names an op, declares its inputs, and builds a
 * small graph around that op; the harness weights every output by a random tensor (so a permuted or
 * misplaced gradient cannot cancel out), sums to a scalar loss and runs `checkGradients` over every float
 * input.
 */

import { checkGradients, type GradCheckResult } from '../../src/autodiff/gradient-check.js';
import type { Dim } from '../../src/onnx/dims.js';
import { GraphBuilder } from '../../src/onnx/graph-builder.js';
import type { Value } from '../../src/onnx/graph-types.js';
import { type DType, type FloatDType, typedArray } from '../../src/onnx/tensor-data.js';
import { Rng } from '../../src/random/rng.js';
import { OrtSession, type TensorValue } from '../../src/runtime/ort-session.js';

export interface InputSpec {
  /** Concrete dims fed at run time. */
  shape: readonly number[];
  /** Declared dims when they differ (symbolic, e.g. ['batch', 3]). */
  dims?: readonly Dim[];
  /** int64 / bool inputs are data (indices, masks) and get no gradient; default: the graph's float. */
  dtype?: Exclude<DType, 'float32' | 'float64'>;
  data?: readonly number[];
  /** normal (default), positive (uniform in [0.5, 2]) or away (normal, |x| >= 0.2: off a kink). */
  dist?: 'normal' | 'positive' | 'away';
}

export interface RuleCase {
  op: string;
  title: string;
  float?: FloatDType;
  /** Finite-difference step when the default (see GradCheckOptions) does not suit the case. */
  step?: number;
  inputs: Readonly<Record<string, InputSpec>>;
  forward: (g: GraphBuilder, x: Readonly<Record<string, Value>>) => Value | readonly Value[];
}

function sample(rng: Rng, dist: InputSpec['dist'], n: number): number[] {
  return Array.from({ length: n }, () => {
    if (dist === 'positive') return 0.5 + 1.5 * rng.uniform();
    let v = rng.normal();
    while (dist === 'away' && Math.abs(v) < 0.2) v = rng.normal();
    return v;
  });
}

function declare(g: GraphBuilder, c: RuleCase): { values: Record<string, Value>; outs: Value[] } {
  const values: Record<string, Value> = {};
  for (const [name, spec] of Object.entries(c.inputs)) {
    values[name] = g.input(name, spec.dtype ?? g.float, spec.dims ?? spec.shape);
  }
  const out = c.forward(g, values);
  return { values, outs: Array.isArray(out) ? [...out] : [out as Value] };
}

/** Runs the case's gradient check; returns one result per float input. */
export async function checkRule(c: RuleCase, seed: number): Promise<GradCheckResult[]> {
  const float = c.float ?? 'float64';
  const rng = new Rng(seed);
  const feeds: Record<string, TensorValue> = {};
  for (const [name, spec] of Object.entries(c.inputs)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = spec.data ?? sample(rng, spec.dist, n);
    feeds[name] = { data: typedArray(spec.dtype ?? float, data), dims: spec.shape };
  }
  // A forward probe gives the concrete output dims for the random weights.
  const probe = new GraphBuilder({ float });
  for (const [k, o] of declare(probe, c).outs.entries()) probe.output(o, `out${k}`);
  const session = await OrtSession.create(probe.build());
  const probed = await session.run(feeds);
  await session.dispose();
  for (const [k, out] of Object.entries(probed)) {
    const n = out.data.length;
    feeds[`weight.${k}`] = { data: typedArray(float, sample(rng, 'normal', n)), dims: out.dims };
  }
  return checkGradients(
    (g) => {
      const { values, outs } = declare(g, c);
      if (!g.nodes.some((n) => n.opType === c.op))
        throw new Error(`case "${c.title}" builds no ${c.op} node`);
      const terms = outs.map((o, k) =>
        g.reduceSum(g.mul(o, g.input(`weight.out${k}`, o.dtype, o.shape)), [], false),
      );
      const wrt = Object.values(values).filter((v) => v.dtype === float);
      return { loss: g.sum(terms), wrt };
    },
    feeds,
    c.step === undefined ? { float } : { float, step: c.step },
  );
}

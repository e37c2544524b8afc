/**
 * Finite-difference gradient checks through ORT: the analytic gradients from `backward` against central
 * differences (f(x + h e_i) - f(x - h e_i)) / 2h of the same forward graph, one coordinate at a time.
 * Used by the rule tests and by model code to check a whole training graph in float64.
 */
import { GraphBuilder } from '../onnx/graph-builder.js';
import type { Value } from '../onnx/graph-types.js';
import type { FloatDType } from '../onnx/tensor-data.js';
import { Rng } from '../random/rng.js';
import { OrtSession, type TensorValue } from '../runtime/ort-session.js';
import { backward } from './backward.js';

export interface GradCheckOptions {
  /** Float dtype of the graph (default float64). */
  float?: FloatDType;
  /** Finite-difference step (default 1e-5 in float64, 1e-2 in float32). */
  step?: number;
  /** Check at most this many coordinates of each input, chosen at random (default: all). */
  coordinates?: number;
  seed?: number;
}

export interface GradCheckResult {
  name: string;
  /** max_i |analytic_i - numeric_i| / max_i |numeric_i|: the error relative to the gradient's scale. */
  relError: number;
  maxAbsError: number;
  /** max_i |numeric_i|, so a test can tell a zero gradient from a correct one. */
  scale: number;
  analytic: Float64Array;
  numeric: Float64Array;
}

/** What a check builds: a one-element loss and the graph inputs to differentiate. */
export interface CheckedGraph {
  loss: Value;
  wrt: readonly Value[];
}

/**
 * Builds the graph twice over one builder (forward-only for the differences, forward + backward for the
 * analytic gradients), runs both in ORT with `feeds`, and compares. Every `wrt` must be a graph input.
 */
export async function checkGradients(
  build: (g: GraphBuilder) => CheckedGraph,
  feeds: Readonly<Record<string, TensorValue>>,
  options: GradCheckOptions = {},
): Promise<GradCheckResult[]> {
  const float = options.float ?? 'float64';
  const step = options.step ?? (float === 'float64' ? 1e-5 : 1e-2);
  const g = new GraphBuilder({ float, name: 'gradcheck' });
  const { loss, wrt } = build(g);
  for (const w of wrt) {
    if (!g.inputs.some((i) => i.name === w.name))
      throw new Error(`checkGradients: ${w.name} is not a graph input`);
  }
  g.output(loss, 'loss');
  const forwardBytes = g.toBytes();
  const grads = backward(g, loss, wrt);
  for (const [i, d] of grads.entries()) g.output(d, `grad.${i}`);
  // ORT's extended fusions (e.g. x * sigmoid(x) -> QuickGelu) have float32 kernels only.
  const session = { optimization: float === 'float64' ? ('basic' as const) : ('all' as const) };
  const [fwd, full] = await Promise.all([
    OrtSession.create(forwardBytes, session),
    OrtSession.create(g.toBytes(), session),
  ]);
  try {
    const outs = await full.run(feeds);
    const lossAt = async (name: string, data: Float32Array | Float64Array) => {
      const base = feeds[name] as TensorValue;
      const r = await fwd.run({ ...feeds, [name]: { data, dims: base.dims } }, ['loss']);
      return Number((r.loss as TensorValue).data[0]);
    };
    const rng = new Rng(options.seed ?? 1);
    const results: GradCheckResult[] = [];
    for (const [k, w] of wrt.entries()) {
      const base = feeds[w.name];
      if (!base || !(base.data instanceof Float64Array || base.data instanceof Float32Array)) {
        throw new Error(`checkGradients: feed ${w.name} must be a float array`);
      }
      const analytic = Float64Array.from((outs[`grad.${k}`] as TensorValue).data as Float64Array);
      const numeric = new Float64Array(analytic.length).fill(Number.NaN);
      const n = base.data.length;
      const coords = rng.shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, options.coordinates ?? n);
      for (const i of coords) {
        const x = base.data.slice();
        x[i] = (base.data[i] as number) + step;
        const hi = x[i] as number;
        const up = await lossAt(w.name, x);
        x[i] = (base.data[i] as number) - step;
        const lo = x[i] as number;
        const down = await lossAt(w.name, x);
        // Divide by the step the array actually stored (float32 rounds x +- h).
        numeric[i] = (up - down) / (hi - lo);
      }
      let scale = 0;
      let maxAbsError = 0;
      for (const i of coords) {
        scale = Math.max(scale, Math.abs(numeric[i] as number));
        maxAbsError = Math.max(maxAbsError, Math.abs((analytic[i] as number) - (numeric[i] as number)));
      }
      results.push({
        name: w.name,
        relError: maxAbsError / Math.max(scale, 1e-300),
        maxAbsError,
        scale,
        analytic,
        numeric,
      });
    }
    return results;
  } finally {
    await Promise.all([fwd.dispose(), full.dispose()]);
  }
}

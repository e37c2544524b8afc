/**
 * The KV-cache speed-up at batch 1 with the decode loop inside ONNX Runtime, both ways (decode-loop-models.ts):
 * greedy generation of `newTokens` tokens as a prefill run plus one run of the cached Loop, against one run of
 * the recompute Loop. Both give the same tokens (checked before timing). One intra-op thread, what the engine
 * gives runs this small.
 */
import { headDim } from '../src/model/config.js';
import { buildInferenceModel } from '../src/model/inference-graph.js';
import { initWeights } from '../src/model/weights.js';
import { Rng } from '../src/random/rng.js';
import { inferenceSessionOptions, OrtSession, type TensorValue } from '../src/runtime/ort-session.js';
import { decodeLoopModels } from './decode-loop-models.js';
import { configOf, type GenerationFigure, type ModelShape } from './model-bench.js';
import { median } from './timing.js';

const i64 = (xs: readonly number[]) => BigInt64Array.from(xs.map((x) => BigInt(x)));
const scalarTrue: TensorValue = { data: Uint8Array.from([1]), dims: [] }; // a Uint8Array goes to ORT as bool

export async function decodeLoopThroughput(
  s: ModelShape,
  newTokens: number,
  o: { repeats: number; minSeconds: number; promptTokens?: number },
): Promise<GenerationFigure> {
  const config = configOf(s);
  const weights = initWeights(config, new Rng(3));
  const models = decodeLoopModels(config, weights);
  const options = { ...inferenceSessionOptions, threads: 1 };
  const [step, cached, recompute] = await Promise.all([
    OrtSession.create(buildInferenceModel(config, weights), options),
    OrtSession.create(models.cached, options),
    OrtSession.create(models.recompute, options),
  ]);
  const rng = new Rng(4);
  const promptTokens = o.promptTokens ?? 9;
  const prompt = [0, ...Array.from({ length: promptTokens - 1 }, () => 3 + rng.int(s.vocab - 3))];
  const kv = [1, config.num_key_value_heads, 0, headDim(config)];
  const emptyPast = Object.fromEntries(
    models.pastNames.map((n): [string, TensorValue] => [n, { data: new Float32Array(0), dims: kv }]),
  );
  const withCache = async (): Promise<number[]> => {
    const r = await step.run({
      input_ids: { data: i64(prompt), dims: [1, prompt.length] },
      attention_mask: { data: i64(prompt.map(() => 1)), dims: [1, prompt.length] },
      position_ids: { data: i64(prompt.map((_, k) => k)), dims: [1, prompt.length] },
      ...emptyPast,
    });
    const v = config.vocab_size;
    const logits = r.logits?.data as Float32Array;
    let first = 0;
    for (let k = 1; k < v; k++)
      if (
        (logits[(prompt.length - 1) * v + k] as number) > (logits[(prompt.length - 1) * v + first] as number)
      )
        first = k;
    const loop = await cached.run({
      trips: { data: i64([newTokens - 1]), dims: [] },
      go: scalarTrue,
      ids0: { data: i64([first]), dims: [1, 1] },
      mask0: { data: i64([...prompt, first].map(() => 1)), dims: [1, prompt.length + 1] },
      pos0: { data: i64([prompt.length]), dims: [1, 1] },
      ...Object.fromEntries(
        models.pastNames.map((n, k) => [`${n}_0`, r[models.presentNames[k] as string] as TensorValue]),
      ),
    });
    return [first, ...Array.from(loop.tokens?.data as BigInt64Array, Number)];
  };
  const withoutCache = async (): Promise<number[]> => {
    const r = await recompute.run({
      trips: { data: i64([newTokens]), dims: [] },
      go: scalarTrue,
      prompt: { data: i64(prompt), dims: [1, prompt.length] },
    });
    return Array.from(r.tokens?.data as BigInt64Array, Number);
  };
  const seconds = async (f: () => Promise<unknown>): Promise<number> => {
    const t0 = performance.now();
    await f();
    return (performance.now() - t0) / 1000;
  };
  try {
    const [a, b] = [await withCache(), await withoutCache()];
    if (JSON.stringify(a) !== JSON.stringify(b))
      throw new Error(`the cached and recomputing loops disagree:\n${a}\n${b}`);
    const times = { cached: [] as number[], uncached: [] as number[] };
    const start = performance.now();
    while (times.cached.length < o.repeats || performance.now() - start < o.minSeconds * 1000) {
      const cachedFirst = times.cached.length % 2 === 0;
      const first = await seconds(cachedFirst ? withCache : withoutCache);
      const second = await seconds(cachedFirst ? withoutCache : withCache);
      times.cached.push(cachedFirst ? first : second);
      times.uncached.push(cachedFirst ? second : first);
    }
    return {
      model: s.name,
      batch: 1,
      promptTokens,
      newTokens,
      cached: newTokens / median(times.cached),
      uncached: newTokens / median(times.uncached),
      speedup: median(times.uncached.map((u, i) => u / (times.cached[i] as number))),
      repeats: times.cached.length,
    };
  } finally {
    await Promise.all([step.dispose(), cached.dispose(), recompute.dispose()]);
  }
}

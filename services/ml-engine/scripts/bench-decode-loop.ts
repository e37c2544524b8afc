/**
 * Greedy generation with the whole decode loop inside one ONNX Runtime call (an ONNX `Loop` around the
 * model's inference graph), with and without the KV cache, against the same two loops driven from TypeScript
 * one `session.run` per token (what `generate()` does). It answers one question of the engine issue: how far
 * the KV-cache speed-up at batch 1 is held back by the cost of each call, when both sides are built the same
 * way. The four ways must give the same tokens; the script checks that before it times anything.
 *
 * Usage: node --import tsx services/ml-engine/scripts/bench-decode-loop.ts [small|medium] [threads] [prompt]
 */
import { decodeLoopModels } from '../bench/decode-loop-models.js';
import { configOf, mediumModel, smallModel } from '../bench/model-bench.js';
import { median } from '../bench/timing.js';
import { headDim } from '../src/model/config.js';
import { buildInferenceModel } from '../src/model/inference-graph.js';
import { initWeights } from '../src/model/weights.js';
import { Rng } from '../src/random/rng.js';
import { inferenceSessionOptions, OrtSession, type TensorValue } from '../src/runtime/ort-session.js';

const which = process.argv[2] === 'medium' ? mediumModel : smallModel;
const threads = Number(process.argv[3] ?? 1);
const PROMPT = Number(process.argv[4] ?? 9);
const NEW = 64;
const REPEATS = 15;

const config = configOf(which);
const weights = initWeights(config, new Rng(3));
const [kvHeads, hd] = [config.num_key_value_heads, headDim(config)];

const {
  cached: cachedModel,
  recompute: recomputeModel,
  pastNames,
  presentNames,
} = decodeLoopModels(config, weights);

const options = { ...inferenceSessionOptions, ...(threads > 0 ? { threads } : {}) };
const step = await OrtSession.create(buildInferenceModel(config, weights), options);
const cached = await OrtSession.create(cachedModel, options);
const recompute = await OrtSession.create(recomputeModel, options);

const rng = new Rng(4);
const prompt = [0, ...Array.from({ length: PROMPT - 1 }, () => 3 + rng.int(config.vocab_size - 3))];
const i64 = (xs: number[]) => BigInt64Array.from(xs.map(BigInt));
const argmaxLast = (logits: Float32Array, seq: number): number => {
  const v = config.vocab_size;
  let best = 0;
  for (let k = 1; k < v; k++)
    if ((logits[(seq - 1) * v + k] as number) > (logits[(seq - 1) * v + best] as number)) best = k;
  return best;
};
const emptyPast = (): Record<string, TensorValue> =>
  Object.fromEntries(pastNames.map((n) => [n, { data: new Float32Array(0), dims: [1, kvHeads, 0, hd] }]));

/** TypeScript-driven greedy decode, one run per token: on the cache, or the whole sequence each time. */
async function stepwise(useCache: boolean): Promise<number[]> {
  const ids = [...prompt];
  const out: number[] = [];
  let past = emptyPast();
  for (let t = 0; t < NEW; t++) {
    const fresh = useCache && t > 0 ? ids.slice(-1) : ids;
    const start = useCache && t > 0 ? ids.length - 1 : 0;
    const r = await step.run({
      input_ids: { data: i64(fresh), dims: [1, fresh.length] },
      attention_mask: { data: i64(ids.map(() => 1)), dims: [1, ids.length] },
      position_ids: { data: i64(fresh.map((_, k) => start + k)), dims: [1, fresh.length] },
      ...(useCache ? past : emptyPast()),
    });
    const next = argmaxLast(r.logits?.data as Float32Array, fresh.length);
    if (useCache)
      past = Object.fromEntries(pastNames.map((n, k) => [n, r[presentNames[k] as string] as TensorValue]));
    ids.push(next);
    out.push(next);
  }
  return out;
}

/** Prefill in one run, then the other 63 tokens in one run of the cached loop. */
async function inGraphCached(): Promise<number[]> {
  const r = await step.run({
    input_ids: { data: i64(prompt), dims: [1, prompt.length] },
    attention_mask: { data: i64(prompt.map(() => 1)), dims: [1, prompt.length] },
    position_ids: { data: i64(prompt.map((_, k) => k)), dims: [1, prompt.length] },
    ...emptyPast(),
  });
  const first = argmaxLast(r.logits?.data as Float32Array, prompt.length);
  const loop = await cached.run({
    trips: { data: i64([NEW - 1]), dims: [] },
    go: { data: Uint8Array.from([1]), dims: [] },
    ids0: { data: i64([first]), dims: [1, 1] },
    mask0: { data: i64([...prompt, first].map(() => 1)), dims: [1, prompt.length + 1] },
    pos0: { data: i64([prompt.length]), dims: [1, 1] },
    ...Object.fromEntries(pastNames.map((n, k) => [`${n}_0`, r[presentNames[k] as string] as TensorValue])),
  });
  return [first, ...Array.from(loop.tokens?.data as BigInt64Array, Number)];
}

/** All 64 tokens in one run of the recompute loop. */
async function inGraphRecompute(): Promise<number[]> {
  const r = await recompute.run({
    trips: { data: i64([NEW]), dims: [] },
    go: { data: Uint8Array.from([1]), dims: [] },
    prompt: { data: i64(prompt), dims: [1, prompt.length] },
  });
  return Array.from(r.tokens?.data as BigInt64Array, Number);
}

const ways = {
  'TypeScript loop, KV cache': () => stepwise(true),
  'TypeScript loop, recompute': () => stepwise(false),
  'ONNX Loop, KV cache': inGraphCached,
  'ONNX Loop, recompute': inGraphRecompute,
};
const tokens = await Promise.all(Object.values(ways).map((f) => f()));
for (const [k, name] of Object.keys(ways).entries())
  if (JSON.stringify(tokens[k]) !== JSON.stringify(tokens[0]))
    throw new Error(`${name} gave other tokens:\n${tokens[k]}\nthan\n${tokens[0]}`);

const cpu = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const cpuUs: number[][] = Object.keys(ways).map(() => []);
const wallUs: number[][] = Object.keys(ways).map(() => []);
for (let r = 0; r < REPEATS; r++) {
  for (const [k, f] of Object.values(ways).entries()) {
    const [c, w] = [cpu(), performance.now()];
    await f();
    cpuUs[k]?.push((cpu() - c) / NEW);
    wallUs[k]?.push(((performance.now() - w) * 1000) / NEW);
  }
}
const m = (xs: number[] | undefined) => median(xs ?? []);
const f0 = (x: number) => x.toFixed(0).padStart(7);
const lines = [
  `${which === smallModel ? 'small' : 'medium'} model, batch 1, ${PROMPT}-token prompt, ${NEW} greedy tokens, ${threads > 0 ? threads : 'default'} intra-op thread(s); us per token, medians of ${REPEATS}`,
  '                                CPU      wall',
];
for (const [k, name] of Object.keys(ways).entries())
  lines.push(`  ${name.padEnd(28)} ${f0(m(cpuUs[k]))}   ${f0(m(wallUs[k]))}`);
const ratio = (a: number, b: number) =>
  `${(m(cpuUs[b]) / m(cpuUs[a])).toFixed(2)}x CPU, ${(m(wallUs[b]) / m(wallUs[a])).toFixed(2)}x wall`;
lines.push(`KV-cache speed-up, TypeScript loops: ${ratio(0, 1)}`);
lines.push(`KV-cache speed-up, ONNX Loops:      ${ratio(2, 3)}`);
lines.push('(the four ways gave the same 64 tokens)');
process.stdout.write(`${lines.join('\n')}\n`);
await Promise.all([step.dispose(), cached.dispose(), recompute.dispose()]);

/**
 * Where the time of one generation step goes on the bench's small model at batch 1 (or the batch given):
 * the ORT call alone for a KV-cache decode step and for a full recompute (what `generate` does without the
 * cache), for the inference graph (opset-23 fused ops) and for the same model with the training graph's
 * decomposed ops; the call of a graph with the decoder's inputs and outputs and next to no compute (what
 * the node binding's feeds and fetches cost, which both steps pay); the steps through `generate` (feeds,
 * sampling and bookkeeping in TypeScript included); the kernels ORT runs per graph; and the per-row
 * sampling. Every figure is process CPU time per step (or per call), median of repeats, so time the process
 * spends descheduled by other work on a shared machine does not count; wall time under load is what
 * `rlhf bench engine` reports.
 *
 * Usage: node --import tsx services/ml-engine/scripts/bench-decode-step.ts [batch] [threads]
 *   (defaults: batch 1, threads 1; threads 0 = the session default, every core)
 * The cached/uncached ratio of the ORT calls alone bounds what trimming TypeScript overhead can reach.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configOf, smallModel } from '../bench/model-bench.js';
import { median } from '../bench/timing.js';
import { headDim } from '../src/model/config.js';
import { buildInferenceModel, INFERENCE_OPSET } from '../src/model/inference-graph.js';
import { initWeights } from '../src/model/weights.js';
import { GraphBuilder } from '../src/onnx/graph-builder.js';
import { decodeModel } from '../src/onnx/onnx-decode.js';
import { Rng } from '../src/random/rng.js';
import { inferenceSessionOptions, OrtSession, type TensorValue } from '../src/runtime/ort-session.js';
import { generate } from '../src/sampling/generate.js';
import { type SamplingParams, sampleToken } from '../src/sampling/sample-token.js';

const batch = Number(process.argv[2] ?? 1);
const threads = Number(process.argv[3] ?? 1);
const PROMPT = 9;
const NEW = 64;
const REPEATS = batch > 8 ? 5 : 25;

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

type Probe = [fn: () => Promise<unknown> | unknown, calls: number];

/**
 * Median CPU microseconds per call of each probe, `calls` calls per repeat; the probes take turns repeat by
 * repeat, so a change in the machine's load during the run reaches all of them alike.
 */
async function cpuMicros(probes: Probe[]): Promise<number[]> {
  for (const [fn] of probes) for (let i = 0; i < 2; i++) await fn();
  const xs: number[][] = probes.map(() => []);
  for (let r = 0; r < REPEATS; r++) {
    for (const [k, [fn, calls]] of probes.entries()) {
      const t = cpuMs();
      for (let i = 0; i < calls; i++) await fn();
      xs[k]?.push(((cpuMs() - t) * 1000) / calls);
    }
  }
  return xs.map(median);
}

const config = configOf(smallModel);
const sessionOptions = { ...inferenceSessionOptions, ...(threads > 0 ? { threads } : {}) };
const weights = initWeights(config, new Rng(3));
const models = {
  fused: buildInferenceModel(config, weights),
  decomposed: buildInferenceModel(config, weights, { fused: false }),
  floor: signatureOnly(),
};
const session = await OrtSession.create(models.fused, sessionOptions);
const decomposed = await OrtSession.create(models.decomposed, sessionOptions);
const floor = await OrtSession.create(models.floor, sessionOptions);

/**
 * The decoder's inputs and outputs (same names, shapes and dtypes) with next to no compute between them:
 * logits and presents are broadcasts of the input ids.
 */
function signatureOnly(): Uint8Array {
  const g = new GraphBuilder({ name: 'signature' });
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  g.input('attention_mask', 'int64', ['batch', '(past+seq)']);
  g.input('position_ids', 'int64', ['batch', 'seq']);
  const x = g.cast(ids, 'float32');
  g.output(g.mul(g.unsqueeze(x, [2]), g.constant(new Array(config.vocab_size).fill(1))), 'logits');
  const [kv, hd] = [config.num_key_value_heads, headDim(config)];
  const fresh = g.mul(g.unsqueeze(x, [1, 3]), g.constant(new Array(kv * hd).fill(1), [1, kv, 1, hd]));
  for (let i = 0; i < config.num_hidden_layers; i++) {
    for (const part of ['key', 'value']) {
      const past = g.input(`past_key_values.${i}.${part}`, 'float32', ['batch', kv, 'past', hd]);
      g.output(g.concat([past, fresh], 2), `present.${i}.${part}`);
    }
  }
  return g.toBytes({ opset: INFERENCE_OPSET });
}

/** The number of kernels ORT runs for a model, after its graph optimisations. */
async function kernelCount(model: Uint8Array): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'decode-step-'));
  try {
    const path = join(dir, 'optimized.onnx');
    await (await OrtSession.create(model, { ...sessionOptions, optimizedModelPath: path })).dispose();
    return decodeModel(await readFile(path)).graph.node.length;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
const rng = new Rng(4);
const ids = (n: number): BigInt64Array =>
  BigInt64Array.from({ length: batch * n }, () => BigInt(3 + rng.int(config.vocab_size - 3)));
const kv = (past: number): Record<string, TensorValue> => {
  const feeds: Record<string, TensorValue> = {};
  const dims = [batch, config.num_key_value_heads, past, headDim(config)];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    for (const part of ['key', 'value']) {
      const data = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal());
      feeds[`past_key_values.${i}.${part}`] = { data, dims };
    }
  }
  return feeds;
};
const feeds = (fresh: number, past: number): Record<string, TensorValue> => ({
  input_ids: { data: ids(fresh), dims: [batch, fresh] },
  attention_mask: { data: new BigInt64Array(batch * (past + fresh)).fill(1n), dims: [batch, past + fresh] },
  position_ids: {
    data: BigInt64Array.from({ length: batch * fresh }, (_, i) => BigInt(past + (i % fresh))),
    dims: [batch, fresh],
  },
  ...kv(past),
});
// The 64 steps of a 9 + 64 token generation: one token on a growing cache, or the whole sequence so far.
const decodeSteps = Array.from({ length: NEW }, (_, k) => feeds(1, PROMPT + k));
const fullSteps = Array.from({ length: NEW }, (_, k) => feeds(PROMPT + k, 0));
const cycle = (steps: Record<string, TensorValue>[], on: OrtSession = session) => {
  let k = 0;
  return () => on.run(steps[k++ % steps.length] as Record<string, TensorValue>);
};

const requests = Array.from({ length: batch }, () => ({
  promptIds: [0, ...Array.from({ length: PROMPT - 1 }, () => 3 + rng.int(config.vocab_size - 3))],
  n: 1,
}));
const options = {
  temperature: 1,
  topP: 1,
  topK: 0,
  greedy: false,
  maxNewTokens: NEW,
  seed: 5,
  eosId: -1,
  padId: 2,
  maxBatch: batch,
};
const logits = Float32Array.from({ length: config.vocab_size }, () => 3 * rng.normal());
const sampling: Array<[string, SamplingParams]> = [
  ['temperature 1', { temperature: 1, topP: 1, topK: 0, greedy: false }],
  ['temperature 0.7', { temperature: 0.7, topP: 1, topK: 0, greedy: false }],
  ['greedy', { temperature: 1, topP: 1, topK: 0, greedy: true }],
  ['top-p 0.9', { temperature: 1, topP: 0.9, topK: 0, greedy: false }],
];

const [ortCached, ortFull, decCached, decFull, floorCached, floorFull, genCached, genFull] = (await cpuMicros(
  [
    [cycle(decodeSteps), NEW],
    [cycle(fullSteps), NEW],
    [cycle(decodeSteps, decomposed), NEW],
    [cycle(fullSteps, decomposed), NEW],
    [cycle(decodeSteps, floor), NEW],
    [cycle(fullSteps, floor), NEW],
    [() => generate(session, config, requests, { ...options, useCache: true }), 1],
    [() => generate(session, config, requests, { ...options, useCache: false }), 1],
  ],
)) as [number, number, number, number, number, number, number, number];
const perStep = (x: number): number => x / NEW;
const f0 = (x: number): string => x.toFixed(0).padStart(8);
const row = (name: string, cached: number, full: number, kernels?: number): string =>
  `  ${name.padEnd(36)} ${f0(cached)}        ${f0(full)}    ${(full / cached).toFixed(2)}x${kernels === undefined ? '' : `   ${kernels}`}`;
const out = [
  `small model, batch ${batch}, ${threads > 0 ? threads : 'default'} intra-op thread(s); CPU us per step (${PROMPT}-token prompt, ${NEW} new tokens)`,
  '                                       with KV cache   recompute   ratio   kernels',
  row('OrtSession.run, fused ops', ortCached, ortFull, await kernelCount(models.fused)),
  row('OrtSession.run, decomposed ops', decCached, decFull, await kernelCount(models.decomposed)),
  row('OrtSession.run, signature only', floorCached, floorFull, await kernelCount(models.floor)),
  row('generate() step (fused ops)', perStep(genCached), perStep(genFull)),
  `  generate() beyond the ORT call       ${f0(perStep(genCached) - ortCached)}        ${f0(perStep(genFull) - ortFull)}`,
  '',
  `sampleToken, one row of ${config.vocab_size} logits (CPU us per call)`,
];
const samplingMicros = await cpuMicros(
  sampling.map(([, p]): Probe => {
    const r = new Rng(1);
    return [() => sampleToken(logits, 0, config.vocab_size, p, r), 500];
  }),
);
sampling.forEach(([name], k) => {
  out.push(`  ${name.padEnd(36)} ${(samplingMicros[k] as number).toFixed(1).padStart(8)}`);
});
process.stdout.write(`${out.join('\n')}\n`);
await Promise.all([session.dispose(), decomposed.dispose(), floor.dispose()]);

/**
 * One intra-op thread against every core, for sessions whose idle threads sleep (as served models' do): the
 * wall time of generation (32 new tokens after a 9-token prompt, KV cache) and of one forward pass over
 * whole sequences (what prefill and scoring run), for the reference policy's shape (hidden 64) and the bench's
 * small and medium models, at several batch sizes. The two sessions take turns, repeat by repeat, so load that
 * changes during the run hits both alike. Each line gives the estimated work of one run (runFlops, in MFLOP;
 * generation: a decode step at its longest) and the time ratio, one thread over every thread: below 1, one
 * thread is faster. This is what SplitSession's RLHF_ORT_SMALL_RUN_MFLOPS threshold is read from.
 *
 * Usage: node --import tsx services/ml-engine/scripts/bench-threads.ts [threads]
 *   (default: every core this process may use). Prints figures only; it asserts nothing about time.
 */
import { availableParallelism } from 'node:os';
import { configOf, type ModelShape, mediumModel, smallModel } from '../bench/model-bench.js';
import { median } from '../bench/timing.js';
import { headDim, type LlamaConfig } from '../src/model/config.js';
import { buildInferenceModel } from '../src/model/inference-graph.js';
import { initWeights } from '../src/model/weights.js';
import { Rng } from '../src/random/rng.js';
import { inferenceSessionOptions, OrtSession, type TensorValue } from '../src/runtime/ort-session.js';
import { runFlops } from '../src/runtime/split-session.js';
import { generate } from '../src/sampling/generate.js';

const wide = Number(process.argv[2] ?? availableParallelism());
const REPEATS = 7;
const PROMPT = 9;
const NEW = 32;
const policyShape: ModelShape = { ...smallModel, name: 'policy', hidden: 64, intermediate: 172, vocab: 400 };

/** Median milliseconds of `fn` on each session, the sessions alternating repeat by repeat. */
async function alternate(fn: (s: OrtSession) => Promise<unknown>, sessions: OrtSession[]): Promise<number[]> {
  for (const s of sessions) await fn(s);
  const times: number[][] = sessions.map(() => []);
  for (let r = 0; r < REPEATS; r++) {
    for (const [i, s] of sessions.entries()) {
      const t0 = performance.now();
      await fn(s);
      times[i]?.push(performance.now() - t0);
    }
  }
  return times.map(median);
}

/** Feeds for a forward pass over `batch` rows of `seq` tokens, no cache. */
function forwardFeeds(c: LlamaConfig, batch: number, seq: number): Record<string, TensorValue> {
  const n = batch * seq;
  const feeds: Record<string, TensorValue> = {
    input_ids: {
      data: BigInt64Array.from({ length: n }, (_, i) => BigInt(3 + (i % 300))),
      dims: [batch, seq],
    },
    attention_mask: { data: new BigInt64Array(n).fill(1n), dims: [batch, seq] },
    position_ids: { data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i % seq)), dims: [batch, seq] },
  };
  const dims = [batch, c.num_key_value_heads, 0, headDim(c)];
  for (let l = 0; l < c.num_hidden_layers; l++)
    for (const part of ['key', 'value'])
      feeds[`past_key_values.${l}.${part}`] = { data: new Float32Array(0), dims };
  return feeds;
}

const line = (what: string, mflops: number, [one, all]: number[]): string =>
  `${what.padEnd(34)} ${mflops.toFixed(0).padStart(6)} MFLOP   1 thread ${(one as number).toFixed(2).padStart(8)} ms   ${wide} threads ${(all as number).toFixed(2).padStart(8)} ms   ratio ${((one as number) / (all as number)).toFixed(2)}`;

process.stdout.write(
  `one intra-op thread against ${wide}, idle threads sleeping; ${availableParallelism()} cores; Node ${process.version}; medians of ${REPEATS}\n`,
);
for (const shape of [policyShape, smallModel, mediumModel]) {
  const config = configOf(shape);
  const model = buildInferenceModel(config, initWeights(config, new Rng(3)));
  const sessions = [
    await OrtSession.create(model, { ...inferenceSessionOptions, spinning: false, threads: 1 }),
    await OrtSession.create(model, { ...inferenceSessionOptions, spinning: false, threads: wide }),
  ];
  for (const batch of [1, 8, 32, 64]) {
    const requests = Array.from({ length: batch }, (_, i) => ({
      promptIds: Array.from({ length: PROMPT }, (_, k) => 3 + ((i * 7 + k * 13) % 300)),
      n: 1,
    }));
    const o = {
      eosId: -1,
      padId: 0,
      temperature: 1,
      topP: 1,
      topK: 0,
      greedy: false,
      maxNewTokens: NEW,
      seed: 1,
    };
    const step = runFlops(config, {
      input_ids: { data: new BigInt64Array(batch), dims: [batch, 1] },
      'past_key_values.0.key': { data: new Float32Array(0), dims: [batch, 1, PROMPT + NEW - 1, 1] },
    });
    const ms = await alternate((s) => generate(s, config, requests, o), sessions);
    process.stdout.write(`${line(`${shape.name} generate, batch ${batch}`, step / 1e6, ms)}\n`);
  }
  for (const [batch, seq] of [
    [1, 40],
    [16, 40],
    [64, 40],
    [64, 100],
  ] as const) {
    const feeds = forwardFeeds(config, batch, seq);
    const ms = await alternate((s) => s.run(feeds), sessions);
    process.stdout.write(
      `${line(`${shape.name} forward, ${batch} x ${seq} tokens`, runFlops(config, feeds) / 1e6, ms)}\n`,
    );
  }
  for (const s of sessions) await s.dispose();
}

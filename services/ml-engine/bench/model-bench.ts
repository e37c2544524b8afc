/**
 * Training and generation throughput of random-init Llama models on synthetic tokens.
 * Training FLOPs per token = 6 x parameters (forward + backward of every weight) + 12 x layers x seq x hidden
 * (attention scores and mixing, forward and backward); MFU = achieved FLOP/s / the measured GEMM peak.
 */
import { type LlamaConfig, parameterCount, parseLlamaConfig } from '../src/model/config.js';
import { buildInferenceModel } from '../src/model/inference-graph.js';
import { initWeights } from '../src/model/weights.js';
import { Rng } from '../src/random/rng.js';
import { inferenceSessionOptions, OrtSession } from '../src/runtime/ort-session.js';
import { generate } from '../src/sampling/generate.js';
import { RowLoop } from '../src/sampling/row-loop.js';
import { lmFeeds } from '../src/train/batches.js';
import type { Example } from '../src/train/examples.js';
import { buildTrainingGraph, gradName } from '../src/train/training-graph.js';
import { median, timeRepeats } from './timing.js';

export interface ModelShape {
  name: string;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  seq: number;
  batch: number;
}

export const smallModel: ModelShape = {
  name: 'small',
  hidden: 128,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  intermediate: 344,
  vocab: 512,
  seq: 128,
  batch: 16,
};
export const mediumModel: ModelShape = {
  name: 'medium',
  hidden: 256,
  layers: 4,
  heads: 8,
  kvHeads: 4,
  intermediate: 688,
  vocab: 512,
  seq: 128,
  batch: 16,
};

export function configOf(s: ModelShape): LlamaConfig {
  return parseLlamaConfig({
    hidden_size: s.hidden,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    intermediate_size: s.intermediate,
    vocab_size: s.vocab,
    max_position_embeddings: Math.max(s.seq, 192),
  });
}

export function trainingFlopsPerToken(s: ModelShape): number {
  return 6 * parameterCount(configOf(s)) + 12 * s.layers * s.seq * s.hidden;
}

export interface TrainFigure {
  model: string;
  parameters: number;
  tokensPerSecond: number;
  gflops: number;
  /** Seconds per training step (forward + backward through ORT; the optimizer update excluded). */
  stepSeconds: number;
}

/** One training step = one ORT run of the LM training graph (loss and every gradient) on a full batch. */
export async function trainingThroughput(s: ModelShape, minSeconds: number): Promise<TrainFigure> {
  const config = configOf(s);
  const weights = initWeights(config, new Rng(1));
  const graph = buildTrainingGraph(config, { objective: 'lm' });
  const session = await OrtSession.create(graph.graph.toBytes());
  const rng = new Rng(2);
  const rows: Example[] = Array.from({ length: s.batch }, () => {
    const ids = Array.from({ length: s.seq }, () => 3 + rng.int(s.vocab - 3));
    return { ids, targets: ids.map((_, i) => i > 0) };
  });
  const feeds = {
    ...Object.fromEntries(
      graph.params.map((p) => [p.name, { data: weights.get(p.name) as Float32Array, dims: p.shape }]),
    ),
    ...lmFeeds(rows, 2),
  };
  const outputs = ['loss', ...graph.params.map((p) => gradName(p.name))];
  try {
    const secs = await timeRepeats(async () => void (await session.run(feeds, outputs)), {
      warmup: 2,
      repeats: 3,
      minSeconds,
    });
    const step = median(secs);
    const tokens = s.batch * s.seq;
    return {
      model: s.name,
      parameters: parameterCount(config),
      tokensPerSecond: tokens / step,
      gflops: (tokens * trainingFlopsPerToken(s)) / step / 1e9,
      stepSeconds: step,
    };
  } finally {
    await session.dispose();
  }
}

export interface GenerationFigure {
  model: string;
  batch: number;
  /** Prompt length in tokens (BOS included). */
  promptTokens: number;
  newTokens: number;
  /** Median tokens/s with the KV cache. */
  cached: number;
  /** Median tokens/s without it. */
  uncached: number;
  /** Median over repeats of uncached time / cached time, the two runs of a repeat back to back. */
  speedup: number;
  /** Pairs of runs timed (after one warm-up run of each). */
  repeats: number;
  /**
   * Batch 1 only, timed in the same rounds: the cached side on the row loop (row-loop.ts: its own session, 1
   * intra-op thread) against the uncached side on one thread as well (a served model's setting for runs this
   * small, SplitSession); median tokens/s of each, and the median of uncached time / row-loop time.
   */
  rowLoop?: { tokensPerSecond: number; uncachedTokensPerSecond: number; speedup: number };
}

/**
 * Generation tokens/s (new tokens over wall time) with and without the KV cache, prompts of `promptTokens`
 * random tokens (default 9, BOS included). The
 * two are timed in alternating back-to-back pairs (which goes first alternates too), so load on the machine
 * that changes during the measurement hits both alike; the speed-up is the median of the per-pair ratios.
 * At batch 1 each round also times generate() on the row loop, and the uncached runs on one thread as the row
 * loop runs, the order of the four rotating.
 */
export async function generationThroughput(
  s: ModelShape,
  batch: number,
  newTokens: number,
  o: { repeats: number; minSeconds: number; promptTokens?: number } = { repeats: 5, minSeconds: 0 },
): Promise<GenerationFigure> {
  const config = configOf(s);
  const promptTokens = o.promptTokens ?? 9;
  const model = buildInferenceModel(config, initWeights(config, new Rng(3)));
  const session = await OrtSession.create(model, inferenceSessionOptions);
  const rng = new Rng(4);
  const requests = Array.from({ length: batch }, () => ({
    promptIds: [0, ...Array.from({ length: promptTokens - 1 }, () => 3 + rng.int(s.vocab - 3))],
    n: 1,
  }));
  // eosId outside the vocabulary: every row runs the full newTokens, so both variants do the same work.
  const opts = {
    temperature: 1,
    topP: 1,
    topK: 0,
    greedy: false,
    maxNewTokens: newTokens,
    seed: 5,
    eosId: -1,
    padId: 2,
    maxBatch: batch,
  };
  // Batch 1: the row loop, and a one-thread session for its prefill and for the uncached runs it is put against.
  const rowLoop = batch === 1 ? new RowLoop(model, config) : null;
  const narrow = rowLoop ? await OrtSession.create(model, { ...inferenceSessionOptions, threads: 1 }) : null;
  type Way = 'cached' | 'uncached' | 'rowLoop' | 'uncachedNarrow';
  const ways: Way[] = ['cached', 'uncached', ...(rowLoop ? (['rowLoop', 'uncachedNarrow'] as const) : [])];
  const seconds = async (way: Way): Promise<number> => {
    const t0 = performance.now();
    const oneThread = (way === 'rowLoop' || way === 'uncachedNarrow') && narrow ? narrow : session;
    const extra = way === 'rowLoop' && rowLoop ? { rowLoop } : {};
    const useCache = way === 'cached' || way === 'rowLoop';
    await generate(oneThread, config, requests, { ...opts, ...extra, useCache });
    return (performance.now() - t0) / 1000;
  };
  try {
    for (const way of ways) await seconds(way);
    const times: Record<Way, number[]> = { cached: [], uncached: [], rowLoop: [], uncachedNarrow: [] };
    const start = performance.now();
    for (let round = 0; round < o.repeats || performance.now() - start < o.minSeconds * 1000; round++) {
      // Which way goes first rotates, so load that changes during the measurement hits all alike.
      for (let k = 0; k < ways.length; k++) {
        const way = ways[(round + k) % ways.length] as Way;
        times[way].push(await seconds(way));
      }
    }
    const tokens = batch * newTokens;
    const speedup = (u: number[], t: number[]) => median(u.map((x, i) => x / (t[i] as number)));
    return {
      model: s.name,
      batch,
      promptTokens,
      newTokens,
      cached: tokens / median(times.cached),
      uncached: tokens / median(times.uncached),
      speedup: speedup(times.uncached, times.cached),
      repeats: times.cached.length,
      ...(rowLoop
        ? {
            rowLoop: {
              tokensPerSecond: tokens / median(times.rowLoop),
              uncachedTokensPerSecond: tokens / median(times.uncachedNarrow),
              speedup: speedup(times.uncachedNarrow, times.rowLoop),
            },
          }
        : {}),
    };
  } finally {
    await Promise.all([session.dispose(), rowLoop?.dispose(), narrow?.dispose()]);
  }
}

/**
 * Batched sampling from an LM inference graph (model.onnx, optimum signature) with the KV cache.
 * Prompts are left-padded so every row's next token sits in the last column; position ids skip the padding.
 * Each (prompt, sample) row draws from its own RNG seeded from (seed, prompt index, sample index), so the
 * same request gives the same text whatever the batch it shares and however the work is sharded.
 */
import type { LlamaConfig } from '../model/config.js';
import { headDim } from '../model/config.js';
import { NEXT_TOKEN_PROBS } from '../model/inference-graph.js';
import { Rng } from '../random/rng.js';
import type { ModelRunner, TensorValue } from '../runtime/ort-session.js';
import { cacheNames } from './kv-cache.js';
import { type RowLoop, rowLoopMode } from './row-loop.js';
import {
  advanceRow,
  type GenerateRequest,
  type Row,
  type RowDefaults,
  rowLoopAllowed,
  rowsOf,
  type Sample,
} from './sample-rows.js';
import { sampleWidth } from './sample-width.js';

export { cacheNames } from './kv-cache.js';
export {
  type FinishReason,
  type GenerateRequest,
  type RequestOptions,
  type RowDefaults,
  rowSeed,
  type Sample,
} from './sample-rows.js';

export interface GenerateOptions extends RowDefaults {
  eosId: number;
  padId: number;
  /**
   * Ids from this one up are never sampled: the tokenizer's size when the embedding has more rows than it
   * has tokens (a padded vocabulary), whose logits are masked as transformers does. Default: all of them.
   */
  sampleVocab?: number;
  /** Rows per forward pass (default 64). */
  maxBatch?: number;
  /** false recomputes the whole sequence each step (only for benchmarks and tests). */
  useCache?: boolean;
  /**
   * The model's row loop (RowLoop.create): a batch of one row that it can sample (greedy, or temperature 1
   * untruncated) decodes on it after the prefill, up to 32 tokens an ORT call, with the same tokens and
   * log-probabilities as token by token. Worth its second session where batch-1 calls are many.
   */
  rowLoop?: RowLoop;
}

/**
 * One batch of rows to the end. Tokens and the attention mask live in [B, promptLen + maxSteps] int64
 * buffers written once per token, so a decode step only copies the mask rows into the feed (a view of the
 * buffer when B = 1) and writes one id and one position per row; the present KV tensors ORT returns are the
 * next step's past as they are. With `loop` (one row), the row goes on to it after the prefill; returns false
 * when the row loop gave the row back (see RowLoop.finish).
 */
async function generateBatch(
  session: ModelRunner,
  c: LlamaConfig,
  rows: Row[],
  o: GenerateOptions,
  loop?: RowLoop,
): Promise<boolean> {
  const B = rows.length;
  const vocab = c.vocab_size;
  const sampled = sampleWidth(vocab, o.sampleVocab);
  const kvHeads = c.num_key_value_heads;
  const hd = headDim(c);
  const maxSteps = Math.max(...rows.map((r) => r.maxNewTokens));
  const promptLen = Math.max(...rows.map((r) => r.prompt.length));
  const width = promptLen + maxSteps;
  // Row b's tokens so far and their mask (1 real, 0 padding) in [b * width, b * width + total), left-padded.
  const tokens = new BigInt64Array(B * width);
  const mask = new BigInt64Array(B * width);
  // Real (unpadded) tokens per row so far, the position source of the next token.
  const realCount = new Int32Array(B);
  rows.forEach((r, b) => {
    const pad = promptLen - r.prompt.length;
    tokens.fill(BigInt(o.padId), b * width, b * width + pad);
    r.prompt.forEach((t, k) => {
      tokens[b * width + pad + k] = BigInt(t);
      mask[b * width + pad + k] = 1n;
    });
    realCount[b] = r.prompt.length;
  });
  const useCache = o.useCache ?? true;
  const names = cacheNames(c.num_hidden_layers);
  const emptyPast: Record<string, TensorValue> = {};
  for (const name of names.past) emptyPast[name] = { data: new Float32Array(0), dims: [B, kvHeads, 0, hd] };
  let past = emptyPast;
  // The one-token feeds of a decode step, rewritten in place every step.
  const stepIds = new BigInt64Array(B);
  const stepPos = new BigInt64Array(B);
  for (let step = 0; step < maxSteps; step++) {
    const total = promptLen + step;
    const fresh = step === 0 || !useCache ? total : 1;
    let ids = stepIds;
    let pos = stepPos;
    let maskFeed: BigInt64Array;
    if (B === 1) maskFeed = mask.subarray(0, total);
    else {
      maskFeed = new BigInt64Array(B * total);
      for (let b = 0; b < B; b++) maskFeed.set(mask.subarray(b * width, b * width + total), b * total);
    }
    if (fresh === 1) {
      for (let b = 0; b < B; b++) {
        stepIds[b] = tokens[b * width + total - 1] as bigint;
        // One new token: its position is the count of real tokens before it (padding skipped).
        stepPos[b] = BigInt(Math.max(0, (realCount[b] as number) - 1));
      }
    } else {
      ids = new BigInt64Array(B * fresh);
      pos = new BigInt64Array(B * fresh);
      for (let b = 0; b < B; b++) {
        ids.set(tokens.subarray(b * width + total - fresh, b * width + total), b * fresh);
        let p = -1;
        for (let t = 0; t < total; t++) {
          const real = mask[b * width + t] !== 0n;
          if (real) p++;
          if (t >= total - fresh) pos[b * fresh + t - (total - fresh)] = BigInt(real ? Math.max(0, p) : 0);
        }
      }
    }
    const feeds: Record<string, TensorValue> = {
      input_ids: { data: ids, dims: [B, fresh] },
      attention_mask: { data: maskFeed, dims: [B, total] },
      position_ids: { data: pos, dims: [B, fresh] },
      ...(step === 0 || !useCache ? emptyPast : past),
    };
    const out = await session.run(feeds);
    const logits = out.logits?.data as Float32Array;
    const probs = out[NEXT_TOKEN_PROBS]?.data as Float32Array | undefined;
    if (useCache) {
      past = {};
      names.past.forEach((name, k) => {
        past[name] = out[names.present[k] as string] as TensorValue;
      });
    }
    let active = 0;
    for (let b = 0; b < B; b++) {
      const r = rows[b] as Row;
      let next = o.padId;
      if (!r.done) {
        const picked = advanceRow(
          r,
          logits,
          (b * fresh + fresh - 1) * vocab,
          sampled,
          o.eosId,
          // The graph's softmax covers every id: with a mask the row's own logits decide.
          sampled === vocab && probs ? { data: probs, offset: b * vocab } : undefined,
        );
        if (picked) next = picked.token;
      }
      if (!r.done) active++;
      const real = r.done && next === o.padId ? 0 : 1;
      tokens[b * width + total] = BigInt(next);
      mask[b * width + total] = real ? 1n : 0n;
      realCount[b] = (realCount[b] as number) + real;
    }
    if (active === 0) break;
    const row = rows[0] as Row;
    if (loop && step === 0) {
      const pasts = names.past.map((name) => past[name] as TensorValue);
      const state = { position: (realCount[0] as number) - 1, pasts };
      return await loop.finish(row, state, o.eosId);
    }
  }
  return true;
}

/** Samples `n` completions for every request; results are ordered by prompt, then sample index. */
export async function generate(
  session: ModelRunner,
  c: LlamaConfig,
  requests: readonly GenerateRequest[],
  o: GenerateOptions,
): Promise<Sample[]> {
  const rows = rowsOf(requests, o);
  const maxBatch = o.maxBatch ?? 64;
  for (let s = 0; s < rows.length; s += maxBatch) {
    const batch = rows.slice(s, s + maxBatch);
    const only = batch.length === 1 ? (batch[0] as Row) : undefined;
    // The row loop samples inside its graph over every id, so a masked vocabulary stays step by step.
    const masked = sampleWidth(c.vocab_size, o.sampleVocab) < c.vocab_size;
    const loop =
      only && !masked && (o.useCache ?? true) && rowLoopMode(only.params) && rowLoopAllowed(only)
        ? o.rowLoop
        : undefined;
    const start = loop && only?.rng.state();
    if (await generateBatch(session, c, batch, o, loop)) continue;
    // The row loop gave the row back: generate it again from its start, token by token.
    if (!only || !start) throw new Error('only a one-row batch goes on the row loop');
    Object.assign(only, { rng: Rng.fromState(start), done: false });
    Object.assign(only.out, { tokenIds: [], logprobs: [], finishReason: 'length' });
    await generateBatch(session, c, batch, o);
  }
  return rows.map((r) => r.out);
}

/**
 * The rows of a generation: one per (prompt, sample), each with its own settings, random stream, stop ids
 * and hooks, and the one rule for taking its next token and deciding whether it is finished. generate()
 * and the continuous decode loop both sample through these, so a row samples the same tokens in either.
 */
import { Rng } from '../random/rng.js';
import { type Picked, type RowProbs, type SamplingParams, sampleToken } from './sample-token.js';
import { type TokenLogprob, topLogprobs } from './top-logprobs.js';

export type FinishReason = 'eos' | 'length' | 'stop';

export interface GenerateRequest {
  /** Prompt token ids (BOS included when the model expects it). */
  promptIds: number[];
  /** Samples for this prompt. */
  n: number;
  /** Global index of the prompt, for its RNG streams (defaults to its position in the list). */
  promptIndex?: number;
  /**
   * This request's own settings, overriding the shared defaults for its rows only, so requests with
   * different sampling settings can share one batched forward pass (a server batching concurrent calls).
   */
  options?: RequestOptions;
}

/** Per-request overrides of the shared defaults, and hooks on this request's rows. */
export interface RequestOptions extends Partial<SamplingParams> {
  seed?: number;
  maxNewTokens?: number;
  stopIds?: readonly number[];
  /** Token ids that end a sample as EOS does (finish reason 'eos'): an HF model's other end tokens. */
  endIds?: readonly number[];
  /**
   * Ends a sample with reason 'stop' when it returns true for the tokens generated so far (e.g. a stop
   * string found in the decoded text). The token that completed the match stays in the sample.
   */
  stopWhen?(tokenIds: readonly number[]): boolean;
  /** When it returns true, this request's unfinished rows stop sampling (e.g. the caller went away). */
  cancelled?(): boolean;
  /** Called with each of this request's samples as soon as it is finished (in completion order). */
  onSample?(sample: Sample): void;
  /**
   * The most likely alternatives (up to MAX_TOP_LOGPROBS) to record beside each sampled token, in
   * `Sample.topLogprobs`. Rows that ask are decoded step by step, never on the row loop (which samples
   * inside its graph and returns no logits).
   */
  topLogprobs?: number;
  /**
   * Called after each token a row takes, with the sample so far (`done` once the token finished it; then
   * onSample follows). A row the row loop gives back starts again from its prompt and takes the same tokens
   * again: callers that pass tokens on count what they passed (a sample's tokens only grow past that count).
   */
  onToken?(sample: Sample, done: boolean): void;
}

/** What a row falls back to when its request does not say. */
export interface RowDefaults extends SamplingParams {
  maxNewTokens: number;
  seed: number;
  /** Token ids that end a sample (besides EOS); the stop token is kept in the output. */
  stopIds?: readonly number[];
  /** Token ids that end a sample as EOS does (finish reason 'eos'): an HF model's other end tokens. */
  endIds?: readonly number[];
}

export interface Sample {
  promptIndex: number;
  sampleIndex: number;
  tokenIds: number[];
  /** Model log-probability of each generated token (temperature 1, untruncated). */
  logprobs: number[];
  /** With `topLogprobs` asked: each token's most likely alternatives, by log-prob (same distribution). */
  topLogprobs?: TokenLogprob[][];
  finishReason: FinishReason;
}

export function rowSeed(seed: number, promptIndex: number, sampleIndex: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const v of [promptIndex, sampleIndex]) {
    h = Math.imul(h ^ v, 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
  }
  return h;
}

export interface Row {
  prompt: readonly number[];
  rng: Rng;
  out: Sample;
  done: boolean;
  /** The row's sampling settings (the shared defaults with its request's overrides). */
  params: SamplingParams;
  maxNewTokens: number;
  stop: ReadonlySet<number>;
  /** End tokens besides EOS (`endIds`). */
  ends: ReadonlySet<number>;
  request: RequestOptions | undefined;
}

/** Whether a row may go on the row loop as far as its request's asks go (its settings are rowLoopMode's). */
export const rowLoopAllowed = (r: Row): boolean => !(r.request?.topLogprobs && r.request.topLogprobs > 0);

/** The rows of `requests`, by request then sample index. */
export function rowsOf(requests: readonly GenerateRequest[], o: RowDefaults): Row[] {
  const rows: Row[] = [];
  requests.forEach((req, i) => {
    const promptIndex = req.promptIndex ?? i;
    const r = req.options;
    const params: SamplingParams = {
      temperature: r?.temperature ?? o.temperature,
      topP: r?.topP ?? o.topP,
      topK: r?.topK ?? o.topK,
      greedy: r?.greedy ?? o.greedy,
    };
    const stop = new Set(r?.stopIds ?? o.stopIds ?? []);
    const ends = new Set(r?.endIds ?? o.endIds ?? []);
    for (let s = 0; s < req.n; s++) {
      rows.push({
        prompt: req.promptIds,
        rng: new Rng(rowSeed(r?.seed ?? o.seed, promptIndex, s)),
        out: { promptIndex, sampleIndex: s, tokenIds: [], logprobs: [], finishReason: 'length' },
        done: false,
        params,
        maxNewTokens: r?.maxNewTokens ?? o.maxNewTokens,
        stop,
        ends,
        request: r,
      });
    }
  });
  return rows;
}

/**
 * Samples an unfinished row's next token from `logits[offset .. offset + vocab)` and finishes the row on EOS,
 * a stop id or stopWhen, or its token budget (calling onSample once). A row whose request was cancelled is
 * finished where it is instead, without a token or onSample: returns null then. `probs`, when the graph
 * returned them, is the same row's softmax (see sampleToken).
 */
export function advanceRow(
  r: Row,
  logits: Float32Array,
  offset: number,
  vocab: number,
  eosId: number,
  probs?: RowProbs,
): Picked | null {
  if (r.request?.cancelled?.()) {
    r.done = true;
    return null;
  }
  const picked = sampleToken(logits, offset, vocab, r.params, r.rng, probs);
  const k = r.request?.topLogprobs ?? 0;
  if (k > 0) {
    // The sampled token's own log-prob, wherever it ranks, is the one its sample records.
    const top = topLogprobs(logits, offset, vocab, k).map((t) =>
      t.token === picked.token ? { token: t.token, logprob: picked.logprob } : t,
    );
    r.out.topLogprobs ??= [];
    r.out.topLogprobs.push(top);
  }
  takeToken(r, picked, eosId);
  return picked;
}

/**
 * Appends a picked token to an unfinished row and finishes the row on EOS or an end token, a stop id or
 * stopWhen, or its token budget (calling onSample once).
 */
export function takeToken(r: Row, picked: Picked, eosId: number): void {
  const next = picked.token;
  r.out.tokenIds.push(next);
  r.out.logprobs.push(picked.logprob);
  if (next === eosId || r.ends.has(next)) {
    r.done = true;
    r.out.finishReason = 'eos';
  } else if (r.stop.has(next) || r.request?.stopWhen?.(r.out.tokenIds)) {
    r.done = true;
    r.out.finishReason = 'stop';
  } else if (r.out.tokenIds.length >= r.maxNewTokens) {
    r.done = true;
  }
  r.request?.onToken?.(r.out, r.done);
  if (r.done) r.request?.onSample?.(r.out);
}

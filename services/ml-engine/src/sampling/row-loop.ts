/**
 * Decodes a single row on the row loop (row-loop-graph.ts): up to ROW_LOOP_CHUNK tokens (or the caller's
 * `trips`) per ORT call instead of one,
 * which is what batch-1 generation on a small model pays for most (the call, not the compute). It takes the
 * rows sampleToken can pick inside the graph with the same arithmetic: greedy, and temperature 1 with no
 * top-k or top-p (the paper's setting). Other rows, and every batch of more than one row, stay on the step
 * session.
 *
 * Tokens come back a chunk at a time and go through the same rule as a step's (takeToken): end tokens, stop
 * ids, stopWhen, the token budget, cancellation checked before each token. The loop stops inside the graph
 * after an end or stop id; stopWhen, a budget or a cancellation met mid-chunk drops the chunk's later tokens,
 * which no one has seen. A token whose probability is too small for its log (or a NaN row) is one
 * sampleToken would score from the logits, which the loop does not return: then the row is given back
 * (`givenBack`; finish() returns false), and the caller generates it again from its start on the step session,
 * its random stream rewound.
 */

import { invalidInput } from '../engine-error.js';
import { headTypeOf, type LlamaConfig, parameterCount } from '../model/config.js';
import type { ModelProto } from '../onnx/onnx-types.js';
import {
  type ModelRunner,
  OrtSession,
  type SessionOptions,
  type TensorValue,
} from '../runtime/ort-session.js';
import { cacheNames } from './kv-cache.js';
import { type RowLoopMode, rowLoopFinal, rowLoopModel, rowLoopStart } from './row-loop-graph.js';
import { type Row, takeToken } from './sample-rows.js';
import { MIN_PROB_FOR_LOG, type SamplingParams } from './sample-token.js';

/**
 * Models up to this many parameters get a row loop where one is wanted (rowLoopFor), unless
 * RLHF_ROW_LOOP_MAX_PARAMETERS says otherwise (0: none). It holds a second copy of the weights, and the call
 * it saves matters less the larger the model: at batch 1 a decode step of a model this size is already about a
 * millisecond of matrix-vector products against some 70 us for the call.
 */
export const ROW_LOOP_MAX_PARAMETERS = 25_000_000;

/** RLHF_ROW_LOOP_MAX_PARAMETERS, else ROW_LOOP_MAX_PARAMETERS. */
export function rowLoopMaxParameters(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.RLHF_ROW_LOOP_MAX_PARAMETERS;
  if (raw === undefined || raw === '') return ROW_LOOP_MAX_PARAMETERS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw invalidInput(
      `must be a whole number of parameters, 0 or more, got "${raw}"`,
      'RLHF_ROW_LOOP_MAX_PARAMETERS',
      `unset it for the default (${ROW_LOOP_MAX_PARAMETERS}), or set 0 to give no model a row loop`,
    );
  return n;
}

/**
 * The row loop's sessions: one intra-op thread, since one row's kernels are too small to share (with 2 threads
 * a trip took 1.4-1.5x as long, both bench models); and ORT's memory pattern, which the step sessions skip
 * (shapesVary) but which made a trip 3-6% cheaper here. Its plans are kept per distinct set of input shapes,
 * and for one row those are bounded by the model's positions.
 */
export const rowLoopSessionOptions: SessionOptions = { threads: 1 };

/**
 * A row loop for a served causal LM of `config` (its model.onnx bytes), or undefined when the model is not a
 * causal LM or has more parameters than rowLoopMaxParameters(env). Its sessions are made on first use.
 */
export function rowLoopFor(
  inference: Uint8Array,
  config: LlamaConfig,
  env: NodeJS.ProcessEnv = process.env,
): RowLoop | undefined {
  if (headTypeOf(config) !== 'lm' || parameterCount(config) > rowLoopMaxParameters(env)) return undefined;
  return new RowLoop(inference, config);
}

/** Tokens per call (at most): small enough that a stop string or cancellation wastes little. */
export const ROW_LOOP_CHUNK = 32;

/** How the row loop picks for these settings: 'greedy', 'sample' (temperature 1, untruncated), or null. */
export function rowLoopMode(p: SamplingParams): RowLoopMode | null {
  if (p.greedy || p.temperature === 0) return 'greedy';
  return p.temperature === 1 && p.topK === 0 && p.topP >= 1 ? 'sample' : null;
}

/** Where a row stands after its prefill: its pending token (sampled, not yet run) and its cache. */
export interface RowState {
  /** The pending token's position. */
  position: number;
  /**
   * present.* of the last run, [1, kvHeads, columns, headDim] each, in cacheNames order: the row's own tokens,
   * no padding columns (the loop attends to every column; see row-loop-graph.ts).
   */
  pasts: readonly TensorValue[];
}

/**
 * The row loops of one model: a session per pick mode, each made the first time a row needs it (it holds a
 * copy of the weights).
 */
/** What a run of the row loop did: tokens taken, and where the row stands (null once done or given back). */
export interface RowAdvance {
  tokens: number;
  state: RowState | null;
  givenBack: boolean;
  /** The row ended without a token, cancelled or `stopped` (no onSample). */
  stopped: boolean;
}

export class RowLoop {
  private readonly names: { past: string[]; present: string[] };
  private readonly sessions = new Map<RowLoopMode, Promise<ModelRunner>>();

  constructor(
    private readonly inference: Uint8Array | ModelProto,
    private readonly config: LlamaConfig,
    private readonly options: SessionOptions = rowLoopSessionOptions,
  ) {
    this.names = cacheNames(config.num_hidden_layers);
  }

  /** The session for `mode`, made now if it was not yet. */
  session(mode: RowLoopMode): Promise<ModelRunner> {
    let s = this.sessions.get(mode);
    if (!s) {
      s = OrtSession.create(rowLoopModel(this.inference, this.config, mode), this.options);
      this.sessions.set(mode, s);
    }
    return s;
  }

  /**
   * Decodes `row` (holding the tokens sampled so far, the last of them pending in `state`) until it is done.
   * Returns false, with the row's output as it stood, when the loop gave the row back (see above).
   */
  async finish(row: Row, state: RowState, eosId: number): Promise<boolean> {
    let at: RowState | null = state;
    while (at) {
      const step = await this.advance(row, at, eosId);
      if (step.givenBack) return false;
      at = step.state;
    }
    return true;
  }

  /**
   * Up to `trips` more tokens of `row` (default ROW_LOOP_CHUNK, never past its budget) in one run. `state`
   * null: the row is done, or was given back (`givenBack`, see above). `stopped` ends the row where it is
   * (no token, no onSample), as a cancelled request does; both are asked before each token is taken.
   */
  async advance(
    row: Row,
    state: RowState,
    eosId: number,
    o: { trips?: number; stopped?: () => boolean } = {},
  ): Promise<RowAdvance> {
    const mode = rowLoopMode(row.params);
    if (mode === null) throw new Error('the row loop samples greedy or temperature-1 untruncated rows only');
    const session = await this.session(mode);
    const goesOn = new Uint8Array(this.config.vocab_size).fill(1);
    for (const t of [eosId, ...row.ends, ...row.stop]) if (t >= 0 && t < goesOn.length) goesOn[t] = 0;
    const { position, pasts } = state;
    const trips = Math.min(o.trips ?? ROW_LOOP_CHUNK, row.maxNewTokens - row.out.tokenIds.length);
    const feeds: Record<string, TensorValue> = {
      trips: { data: BigInt64Array.of(BigInt(trips)), dims: [] },
      go: { data: Uint8Array.of(1), dims: [] },
      ids0: { data: BigInt64Array.of(BigInt(row.out.tokenIds.at(-1) as number)), dims: [1, 1] },
      pos0: { data: BigInt64Array.of(BigInt(position)), dims: [1, 1] },
      goes_on: { data: goesOn, dims: [goesOn.length] },
    };
    // Only a graph from before the fused ops takes the mask: all ones, the cache's columns and the pending token.
    if (session.inputNames.includes('mask0')) {
      const columns = (pasts[0]?.dims[2] ?? 0) + 1;
      feeds.mask0 = { data: new BigInt64Array(columns).fill(1n), dims: [1, columns] };
    }
    if (mode === 'sample') {
      const uniforms = new Float64Array(trips);
      for (let i = 0; i < trips; i++) uniforms[i] = row.rng.uniform();
      feeds.uniforms = { data: uniforms, dims: [trips] };
    }
    this.names.past.forEach((name, k) => {
      feeds[rowLoopStart(name)] = pasts[k] as TensorValue;
    });
    const out = await session.run(feeds);
    const tokens = out.tokens?.data as BigInt64Array;
    const probs = out.token_probs?.data as Float32Array;
    let taken = 0;
    for (; taken < tokens.length && !row.done; taken++) {
      const w = probs[taken] as number;
      if (!(w >= MIN_PROB_FOR_LOG)) return { tokens: taken, state: null, givenBack: true, stopped: false };
      if (row.request?.cancelled?.() || o.stopped?.()) {
        row.done = true;
        return { tokens: taken, state: null, givenBack: false, stopped: true };
      }
      takeToken(row, { token: Number(tokens[taken]), logprob: Math.log(w) }, eosId);
    }
    if (row.done) return { tokens: taken, state: null, givenBack: false, stopped: false };
    // Every trip's token was taken: the cache now ends with the last trip's input, the last token pending.
    return {
      tokens: taken,
      state: {
        position: position + taken,
        pasts: this.names.present.map((name) => out[rowLoopFinal(name)] as TensorValue),
      },
      givenBack: false,
      stopped: false,
    };
  }

  /** Releases the sessions made; one that could not be made (its caller had the error) has nothing to release. */
  async dispose(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(
      sessions.map(async (s) => {
        const made = await s.catch(() => null);
        await made?.dispose();
      }),
    );
  }
}

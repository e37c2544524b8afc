/**
 * Continuous (iteration-level) batching on one inference session: a running batch of rows decodes one token
 * per step, and the batch changes at every step boundary rather than once per pass. Rows that finished (EOS,
 * a stop, their token budget, or cancelled) leave right after the step that finished them, their request
 * answered at once; rows waiting in FIFO order join the next step, up to `maxBatch` rows: one prefill run
 * over the newcomers (left-padded to their longest prompt) samples their first token, and their KV cache is
 * merged into the running batch's. A call that arrives while a step runs waits one step, not a whole pass,
 * and a finished row stops costing compute.
 *
 * Every row keeps its own settings, random stream (rowSeed(seed, prompt index, sample index)), stop ids and
 * hooks, and samples through the same rule as generate() (sample-rows.ts). Position ids count each row's own
 * tokens, skipping padding, so what a row samples does not depend on the rows it shares steps with, except at
 * float32 rounding: padding and batch size change ORT's summation order, so a row's log-probs move by a few
 * parts in a million, and a sampled token could differ only if its uniform draw fell that close to a boundary
 * of the cumulative distribution (greedy: if its two best logits tied to that precision). The tests check
 * identical tokens and log-probs within 1e-4.
 */
import type { LlamaConfig } from '../model/config.js';
import { headDim } from '../model/config.js';
import { NEXT_TOKEN_PROBS } from '../model/inference-graph.js';
import { Rng, type RngState } from '../random/rng.js';
import type { ModelRunner, TensorValue } from '../runtime/ort-session.js';
import { cacheNames, KvCache } from './kv-cache.js';
import { type RowAdvance, type RowLoop, rowLoopMode } from './row-loop.js';
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

export interface DecodeLoopOptions {
  eosId: number;
  padId: number;
  /**
   * Ids from this one up are never sampled: the tokenizer's size when the embedding has more rows than it
   * has tokens (a padded vocabulary), whose logits are masked as transformers does. Default: all of them.
   */
  sampleVocab?: number;
  /** Rows in the running batch at most (default 64); the rest wait, first come first served. */
  maxBatch?: number;
  /** How long an idle loop waits for more work before its first step; 0 waits one turn of the event loop. */
  windowMs?: number;
  /** Called after every step (for metrics). */
  onStep?(step: StepInfo): void;
  /**
   * The model's row loop (row-loop.ts): while the running batch is a single row it can pick for and no one
   * waits, a step decodes up to ROW_LOOP_SERVER_TRIPS tokens of it in one ORT call instead of one; the row
   * samples the same tokens. A call arriving meanwhile joins at the end of that step.
   */
  rowLoop?: RowLoop;
  /**
   * Called once if the row loop fails (its session cannot be made, or a run throws): the row it held starts
   * again step by step, as when the loop gives a row back, and this decode loop stops using the row loop.
   */
  onRowLoopError?(err: unknown): void;
}

/** Tokens a step may take on the row loop: a call that arrives meanwhile waits for at most this many. */
export const ROW_LOOP_SERVER_TRIPS = 16;

export interface StepInfo {
  /** Rows in the step's decode run (0 when the step only prefilled rows that all finished at once). */
  rows: number;
  /** Requests (submit calls) with rows in the decode run. */
  requests: number;
  /** Rows that joined this step (one prefill run for all of them). */
  admitted: number;
  /** Tokens sampled in the step (newcomers' first tokens included). */
  tokens: number;
  /** Samples finished in the step (EOS, stop or length; cancelled rows not counted). */
  finished: number;
  /** Wall time of the step, both runs and the sampling. */
  seconds: number;
  /** Rows still waiting to join after the step. */
  waiting: number;
}

interface Job {
  rows: Row[];
  /** Rows of this job still waiting or in the running batch. */
  open: number;
  /** Index of the next row to admit. */
  next: number;
  /** Rows in the running batch. */
  inBatch: number;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  settled: boolean;
  resolve(samples: Sample[]): void;
  reject(err: unknown): void;
}

interface Running {
  row: Row;
  job: Job;
  /** The row's random stream before its first token, to start it again if the row loop gives it back. */
  start: RngState;
  /** Given back by the row loop once: decoded step by step from then on. */
  stepwise: boolean;
  /** The token sampled last, fed at the next step. */
  pending: number;
  /** Real (non-padding) tokens in the cache: the pending token's position. */
  real: number;
}

export class DecodeLoop {
  private readonly names: { past: string[]; present: string[] };
  private readonly maxBatch: number;
  private readonly vocab: number;
  private queue: Job[] = [];
  private queuedRows = 0;
  private batch: Running[] = [];
  /** Rows being prefilled, not yet in the batch. */
  private admitting: Running[] = [];
  private jobsInBatch = 0;
  private cache: KvCache;
  private driving = false;
  /** Set once the row loop failed: lone rows decode step by step from then on. */
  private rowLoopFailed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly session: ModelRunner,
    private readonly config: LlamaConfig,
    private readonly o: DecodeLoopOptions,
  ) {
    this.names = cacheNames(config.num_hidden_layers);
    this.maxBatch = Math.max(1, o.maxBatch ?? 64);
    this.vocab = config.vocab_size;
    this.cache = this.emptyCache();
  }

  /** Rows waiting to join the running batch. */
  get waiting(): number {
    return this.queuedRows;
  }

  /** Rows in the running batch. */
  get running(): number {
    return this.batch.length;
  }

  /**
   * Queues the requests' rows; resolves with their samples (by request, then sample index) once every row has
   * finished. When `signal` aborts, rows still waiting are dropped at once, rows in the batch stop at the
   * next step, and the promise rejects with the signal's reason once none of its rows is running.
   */
  submit(
    requests: readonly GenerateRequest[],
    defaults: RowDefaults,
    signal?: AbortSignal,
  ): Promise<Sample[]> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const rows = rowsOf(requests, defaults);
    if (rows.some((r) => r.prompt.length === 0))
      return Promise.reject(new Error('every prompt needs at least one token'));
    if (rows.length === 0) return Promise.resolve([]);
    return new Promise<Sample[]>((resolve, reject) => {
      const job: Job = {
        rows,
        open: rows.length,
        next: 0,
        inBatch: 0,
        signal,
        onAbort: undefined,
        settled: false,
        resolve,
        reject,
      };
      if (signal) {
        job.onAbort = () => this.dropWaiting(job);
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.queuedRows += rows.length;
      this.kick();
    });
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.driving && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private emptyCache(): KvCache {
    return KvCache.empty(
      this.config.num_hidden_layers,
      this.config.num_key_value_heads,
      headDim(this.config),
    );
  }

  private kick(): void {
    if (this.driving || this.queue.length === 0) return;
    this.driving = true;
    const go = () => void this.drive();
    if ((this.o.windowMs ?? 0) > 0) setTimeout(go, this.o.windowMs);
    else setImmediate(go);
  }

  private async drive(): Promise<void> {
    while (this.batch.length > 0 || this.queue.length > 0) {
      try {
        await this.step();
      } catch (err) {
        // A run or a row's hook failed: every request with rows in the step fails; the queue goes on.
        this.failJobs(new Set([...this.batch, ...this.admitting].map((r) => r.job)), err);
      }
    }
    this.driving = false;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** One step: admit waiting rows (prefill), then decode one token for every running row. */
  private async step(): Promise<void> {
    const started = performance.now();
    let tokens = 0;
    let finished = 0;
    const newcomers = this.take(this.maxBatch - this.batch.length);
    if (newcomers.length > 0) {
      const got = await this.prefill(newcomers);
      tokens += got.tokens;
      finished += got.finished;
    }
    const rows = this.batch.length;
    const requests = this.jobsInBatch;
    if (rows > 0) {
      const got = await this.decode();
      tokens += got.tokens;
      finished += got.finished;
    }
    this.o.onStep?.({
      rows,
      requests,
      admitted: newcomers.length,
      tokens,
      finished,
      seconds: (performance.now() - started) / 1000,
      waiting: this.queuedRows,
    });
  }

  /** Up to `room` waiting rows, first come first served; rows of a cancelled request end where they are. */
  private take(room: number): Running[] {
    const out: Running[] = [];
    while (out.length < room && this.queue.length > 0) {
      const job = this.queue[0] as Job;
      const row = job.rows[job.next++] as Row;
      this.queuedRows--;
      if (job.next === job.rows.length) this.queue.shift();
      if (row.request?.cancelled?.()) {
        row.done = true;
        this.leave(job);
        continue;
      }
      if (job.inBatch++ === 0) this.jobsInBatch++;
      out.push({ row, job, start: row.rng.state(), stepwise: false, pending: 0, real: row.prompt.length });
    }
    return out;
  }

  /** The newcomers' prompts in one run; samples their first tokens and merges the unfinished into the batch. */
  private async prefill(rows: Running[]): Promise<{ tokens: number; finished: number }> {
    const n = rows.length;
    const L = Math.max(...rows.map((r) => r.row.prompt.length));
    const ids = new BigInt64Array(n * L).fill(BigInt(this.o.padId));
    const mask = new BigInt64Array(n * L);
    const pos = new BigInt64Array(n * L);
    rows.forEach((r, b) => {
      const pad = L - r.row.prompt.length;
      r.row.prompt.forEach((t, k) => {
        ids[b * L + pad + k] = BigInt(t);
        mask[b * L + pad + k] = 1n;
        pos[b * L + pad + k] = BigInt(k);
      });
    });
    const feeds: Record<string, TensorValue> = {
      input_ids: { data: ids, dims: [n, L] },
      attention_mask: { data: mask, dims: [n, L] },
      position_ids: { data: pos, dims: [n, L] },
    };
    const empty = this.emptyCache();
    const dims = [n, empty.kvHeads, 0, empty.headDim];
    for (const name of this.names.past) feeds[name] = { data: new Float32Array(0), dims };
    this.admitting = rows;
    let out: Record<string, TensorValue>;
    try {
      out = await this.session.run(feeds);
    } catch (err) {
      // Only the newcomers' requests fail (a bad prompt must not take the running batch down).
      this.failJobs(new Set(rows.map((r) => r.job)), err);
      return { tokens: 0, finished: 0 };
    }
    const got = this.sample(rows, out, L);
    const keep = rows.flatMap((r, b) => (r.row.done ? [] : [b]));
    const survivors = keep.map((b) => rows[b] as Running);
    this.release(rows);
    if (survivors.length > 0) {
      const longest = Math.max(...survivors.map((r) => r.real));
      const fresh = KvCache.fromOutputs(out, this.names.present).select(keep, L - longest);
      this.cache = this.cache.concat(fresh);
      this.batch.push(...survivors);
    }
    this.admitting = [];
    return got;
  }

  /** One token for every running row, then the finished rows leave the batch. */
  private async decode(): Promise<{ tokens: number; finished: number }> {
    const only = this.batch.length === 1 ? (this.batch[0] as Running) : undefined;
    const loop = this.o.rowLoop;
    const lone = only && this.queue.length === 0 && this.cache.columns === only.real;
    // The row loop samples inside its graph over every id, so a masked vocabulary stays step by step.
    const masked = sampleWidth(this.vocab, this.o.sampleVocab) < this.vocab;
    if (
      lone &&
      loop &&
      !masked &&
      !this.rowLoopFailed &&
      !only.stepwise &&
      rowLoopMode(only.row.params) &&
      rowLoopAllowed(only.row)
    )
      return await this.decodeOnRowLoop(only, loop);
    const B = this.batch.length;
    const T = this.cache.columns;
    const ids = new BigInt64Array(B);
    const pos = new BigInt64Array(B);
    const mask = new BigInt64Array(B * (T + 1));
    this.batch.forEach((r, b) => {
      ids[b] = BigInt(r.pending);
      pos[b] = BigInt(r.real);
      // Left padding, then the row's real tokens and the one fed now.
      mask.fill(1n, b * (T + 1) + T - r.real, (b + 1) * (T + 1));
    });
    const feeds: Record<string, TensorValue> = {
      input_ids: { data: ids, dims: [B, 1] },
      attention_mask: { data: mask, dims: [B, T + 1] },
      position_ids: { data: pos, dims: [B, 1] },
    };
    this.cache.feeds(this.names.past, feeds);
    const out = await this.session.run(feeds);
    this.cache = KvCache.fromOutputs(out, this.names.present);
    for (const r of this.batch) r.real++;
    const got = this.sample(this.batch, out, 1);
    if (this.batch.some((r) => r.row.done)) {
      const keep = this.batch.flatMap((r, b) => (r.row.done ? [] : [b]));
      const survivors = keep.map((b) => this.batch[b] as Running);
      this.release(this.batch);
      // Columns that are padding in every remaining row go as well.
      const longest = survivors.length > 0 ? Math.max(...survivors.map((r) => r.real)) : 0;
      this.cache =
        survivors.length > 0 ? this.cache.select(keep, this.cache.columns - longest) : this.emptyCache();
      this.batch = survivors;
    }
    return got;
  }

  /** Up to ROW_LOOP_SERVER_TRIPS tokens of the batch's one row in one run of the row loop. */
  private async decodeOnRowLoop(r: Running, loop: RowLoop): Promise<{ tokens: number; finished: number }> {
    const columns = this.cache.columns;
    // A lone row's cache holds only its own tokens (padding columns leave with the rows they padded for).
    const dims = [1, this.cache.kvHeads, columns, this.cache.headDim];
    const state = {
      position: r.real,
      pasts: this.cache.tensors.map((data) => ({ data, dims })),
    };
    let got: RowAdvance;
    try {
      got = await loop.advance(r.row, state, this.o.eosId, {
        trips: ROW_LOOP_SERVER_TRIPS,
        stopped: () => r.job.signal?.aborted === true,
      });
    } catch (err) {
      // The row's stream may have moved and some of its tokens be taken: it starts again, as given back.
      this.rowLoopFailed = true;
      this.o.onRowLoopError?.(err);
      got = { tokens: 0, state: null, givenBack: true, stopped: false };
    }
    if (got.givenBack) {
      // Again from its prompt, step by step, its random stream rewound: the tokens it would have had.
      Object.assign(r.row, { rng: Rng.fromState(r.start), done: false });
      Object.assign(r.row.out, { tokenIds: [], logprobs: [], finishReason: 'length' });
      Object.assign(r, { stepwise: true, real: r.row.prompt.length });
      this.batch = [];
      this.cache = this.emptyCache();
      return await this.prefill([r]);
    }
    if (got.state) {
      const presents = Object.fromEntries(this.names.present.map((name, k) => [name, got.state?.pasts[k]]));
      this.cache = KvCache.fromOutputs(presents as Record<string, TensorValue>, this.names.present);
      r.real = got.state.position;
      r.pending = r.row.out.tokenIds.at(-1) as number;
      return { tokens: got.tokens, finished: 0 };
    }
    this.release(this.batch);
    this.batch = [];
    this.cache = this.emptyCache();
    return { tokens: got.tokens, finished: got.stopped ? 0 : 1 };
  }

  /** Samples each row's next token from the last of its `seq` logit rows; rows of aborted calls stop. */
  private sample(
    rows: Running[],
    out: Record<string, TensorValue>,
    seq: number,
  ): { tokens: number; finished: number } {
    const logits = out.logits?.data as Float32Array;
    const probs = out[NEXT_TOKEN_PROBS]?.data as Float32Array | undefined;
    let tokens = 0;
    let finished = 0;
    const width = sampleWidth(this.vocab, this.o.sampleVocab);
    rows.forEach((r, b) => {
      if (r.job.signal?.aborted) {
        r.row.done = true;
        return;
      }
      const picked = advanceRow(
        r.row,
        logits,
        (b * seq + seq - 1) * this.vocab,
        width,
        this.o.eosId,
        // The graph's softmax covers every id: with a mask the row's own logits decide.
        width === this.vocab && probs ? { data: probs, offset: b * this.vocab } : undefined,
      );
      if (picked) {
        tokens++;
        r.pending = picked.token;
        if (r.row.done) finished++;
      }
    });
    return { tokens, finished };
  }

  /** Accounts for the finished rows among `rows`, which are leaving the batch. */
  private release(rows: readonly Running[]): void {
    for (const r of rows) {
      if (!r.row.done) continue;
      if (--r.job.inBatch === 0) this.jobsInBatch--;
      this.leave(r.job);
    }
  }

  /** One of the job's rows is out (finished or dropped); the job is answered when none is left. */
  private leave(job: Job): void {
    if (--job.open === 0) this.settle(job);
  }

  private settle(job: Job, err?: unknown): void {
    if (job.settled) return;
    job.settled = true;
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    if (err !== undefined) job.reject(err);
    else if (job.signal?.aborted) job.reject(job.signal.reason);
    else job.resolve(job.rows.map((r) => r.out));
  }

  /** Takes the job's waiting rows out of the queue. */
  private unqueue(job: Job): number {
    const i = this.queue.indexOf(job);
    if (i < 0) return 0;
    this.queue.splice(i, 1);
    const left = job.rows.length - job.next;
    this.queuedRows -= left;
    job.next = job.rows.length;
    return left;
  }

  /** An aborted call's rows that have not joined yet are dropped now. */
  private dropWaiting(job: Job): void {
    job.open -= this.unqueue(job);
    if (job.open === 0) this.settle(job);
  }

  /** Fails the jobs at once: their waiting rows are dropped and their running rows leave the batch. */
  private failJobs(jobs: ReadonlySet<Job>, err: unknown): void {
    for (const job of jobs) {
      this.unqueue(job);
      this.settle(job, err);
    }
    this.admitting = [];
    const keep = this.batch.flatMap((r, b) => (jobs.has(r.job) ? [] : [b]));
    const survivors = keep.map((b) => this.batch[b] as Running);
    this.jobsInBatch = new Set(survivors.map((r) => r.job)).size;
    if (keep.length === this.batch.length) return;
    const longest = Math.max(0, ...survivors.map((r) => r.real));
    this.cache =
      survivors.length > 0 ? this.cache.select(keep, this.cache.columns - longest) : this.emptyCache();
    this.batch = survivors;
  }
}

/**
 * An inference session that runs small work on one thread and large work on every thread. With idle
 * threads asleep (served models, see SessionOptions.spinning), each parallel kernel first has to wake them,
 * which costs more than it saves when the kernel is small. On 2 cores (scripts/bench-threads.ts), generation
 * with the reference policy's shape at batch 32-64 took 0.65-0.81x the time on one thread, while a forward
 * pass over 64 x 100 tokens of the bench's medium model took 1.7x as long on one thread as on two; the
 * crossover lies between about 250 and 600 MFLOP a run (docs/BENCHMARKS.md, sessions and threads). So the model
 * gets two ORT sessions when it is small enough that some of its runs are small, and each run goes to the
 * one-thread session when its estimated work is under `RLHF_ORT_SMALL_RUN_MFLOPS` (default 256), else to the
 * session with every thread. Which session a run takes depends only on its input shapes, so the same inputs
 * give the same outputs. Served models use it (the model cache); sessions with spinning threads (training,
 * `rlhf generate`) do not.
 */

import { invalidInput } from '../engine-error.js';
import { type LlamaConfig, parameterCount } from '../model/config.js';
import type { ModelProto } from '../onnx/onnx-types.js';
import {
  defaultThreads,
  type ModelRunner,
  OrtSession,
  type OutputTensor,
  type SessionOptions,
  type TensorValue,
} from './ort-session.js';

/** Runs estimated below this many million FLOPs take the one-thread session, unless the env says otherwise. */
export const defaultSmallRunMflops = 256;

/** RLHF_ORT_SMALL_RUN_MFLOPS: 0 sends every run to the session with every thread. */
export function smallRunMflops(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.RLHF_ORT_SMALL_RUN_MFLOPS;
  if (raw === undefined || raw === '') return defaultSmallRunMflops;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0)
    throw invalidInput(
      `must be a number of MFLOPs, 0 or more, got "${raw}"`,
      'RLHF_ORT_SMALL_RUN_MFLOPS',
      'unset it for the default (256), or set 0 to run everything on every thread',
    );
  return n;
}

/**
 * Estimated FLOPs of one run of a decoder graph: every parameter once per token (a multiply and an add),
 * and attention over the past and the new tokens.
 */
export function runFlops(config: LlamaConfig, feeds: Readonly<Record<string, TensorValue>>): number {
  const dims = feeds.input_ids?.dims ?? [];
  const tokens = dims.reduce((a, b) => a * b, 1);
  const seq = dims[1] ?? 1;
  const past = feeds['past_key_values.0.key']?.dims[2] ?? 0;
  const attention = 4 * config.num_hidden_layers * config.hidden_size * tokens * (past + seq);
  return 2 * parameterCount(config) * tokens + attention;
}

export class SplitSession implements ModelRunner {
  private constructor(
    private readonly wide: OrtSession,
    private readonly narrow: OrtSession,
    private readonly config: LlamaConfig,
    private readonly limit: number,
  ) {}

  /**
   * A session for `model` (an inference graph of `config`): a SplitSession when its idle threads sleep
   * (`spinning: false`), it has more than one thread and a one-token run falls under the limit; else one
   * OrtSession with the options given. With spinning threads the one-thread session was no faster in
   * `rlhf bench engine`'s generation, and slower for the medium model at batch 1 (2300-2400 against
   * 2800-3200 tokens/s), so those keep one session.
   */
  static async create(
    model: ModelProto | Uint8Array,
    config: LlamaConfig,
    options: SessionOptions = {},
    env: NodeJS.ProcessEnv = process.env,
  ): Promise<ModelRunner> {
    const threads = options.threads ?? defaultThreads(env);
    const limit = smallRunMflops(env) * 1e6;
    const wide = await OrtSession.create(model, { ...options, threads });
    // Spinning threads are awake already: the split is for sessions whose idle threads sleep.
    if (options.spinning !== false || threads <= 1 || 2 * parameterCount(config) >= limit) return wide;
    try {
      const narrow = await OrtSession.create(model, { ...options, threads: 1 });
      return new SplitSession(wide, narrow, config, limit);
    } catch (err) {
      await wide.dispose();
      throw err;
    }
  }

  get inputNames(): readonly string[] {
    return this.wide.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.wide.outputNames;
  }

  /** Which session a run with these feeds takes. */
  takesOneThread(feeds: Readonly<Record<string, TensorValue>>): boolean {
    return runFlops(this.config, feeds) < this.limit;
  }

  run(
    feeds: Readonly<Record<string, TensorValue>>,
    outputs?: readonly string[],
  ): Promise<Record<string, OutputTensor>> {
    return (this.takesOneThread(feeds) ? this.narrow : this.wide).run(feeds, outputs);
  }

  async dispose(): Promise<void> {
    await Promise.all([this.wide.dispose(), this.narrow.dispose()]);
  }
}

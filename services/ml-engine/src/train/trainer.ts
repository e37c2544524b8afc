/**
 * The training loop shared by every objective: seeded batches (resume-safe: batch k of epoch e never
 * depends on earlier draws), gradient accumulation, global-norm clipping, a warmup schedule, AdamW or SGD,
 * and a progress callback per optimizer step. One ORT session computes loss, metrics and gradients.
 */
import { batchesPerEpoch, batchIndices } from '../data/epoch-order.js';
import { invalidInput } from '../engine-error.js';
import type { LlamaConfig } from '../model/config.js';
import type { Weights } from '../model/weights.js';
import { AdamW, type AdamWState } from '../optim/adamw.js';
import { clipGradNorm } from '../optim/clip-grad-norm.js';
import { GradAccumulator } from '../optim/grad-accumulator.js';
import { lrSchedule } from '../optim/lr-schedule.js';
import { Sgd, type SgdState } from '../optim/sgd.js';
import { OrtSession, type TensorValue } from '../runtime/ort-session.js';
import { dpoFeeds, type Feeds, lmFeeds, rewardFeeds } from './batches.js';
import type { Example, PairExample } from './examples.js';
import { sequenceLogps } from './logps.js';
import type { TrainObjective, TrainOptions } from './train-options.js';
import { buildTrainingGraph, gradName, type Objective } from './training-graph.js';

export { defaultTrainOptions } from './train-defaults.js';
export type { TrainObjective, TrainOptions } from './train-options.js';

export interface StepReport {
  step: number;
  totalSteps: number;
  epoch: number;
  lr: number;
  /** Mean over the step's micro-batches of each metric (loss first). */
  metrics: Record<string, number>;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  tokens: number;
  tokensPerSecond: number;
  elapsedMs: number;
  etaMs: number;
}

export interface TrainerState {
  step: number;
  optimizer: { kind: 'adamw'; state: AdamWState } | { kind: 'sgd'; state: SgdState };
}

export interface TrainInput {
  config: LlamaConfig;
  weights: Weights;
  padId: number;
  /** SFT / PM examples, or preference pairs for rm and dpo. */
  examples: readonly Example[] | readonly PairExample[];
  options: TrainOptions;
  /** DPO reference weights (default: the starting weights, i.e. reference = the initial policy). */
  reference?: Weights;
  resume?: TrainerState;
  onStep?: (r: StepReport) => void | Promise<void>;
  /** Saves a resumable checkpoint every `every` optimizer steps (and never half-way through a step). */
  checkpoint?: { every: number; save: (weights: Weights, state: TrainerState) => Promise<void> };
  signal?: AbortSignal;
}

export interface TrainResult {
  weights: Weights;
  history: StepReport[];
  state: TrainerState;
  /** True when the signal stopped training before the last step. */
  stopped: boolean;
}

const graphObjective: Record<TrainObjective, Objective> = { sft: 'lm', pm: 'lm', rm: 'rm', dpo: 'dpo' };

function validate(o: TrainOptions, n: number): void {
  if (n === 0)
    throw invalidInput('the training set is empty', 'data', 'pass a dataset with at least one record');
  if (!(o.lr > 0)) throw invalidInput(`lr must be > 0, got ${o.lr}`, 'lr');
  if (!(Number.isInteger(o.batchSize) && o.batchSize >= 1))
    throw invalidInput(`batch size must be a positive integer, got ${o.batchSize}`, 'batchSize');
  if (!(Number.isInteger(o.gradAccum) && o.gradAccum >= 1 && o.gradAccum <= o.batchSize)) {
    throw invalidInput(
      `grad accumulation must be an integer in 1..batchSize, got ${o.gradAccum}`,
      'gradAccum',
    );
  }
  if (!(o.epochs > 0) && o.maxSteps === undefined)
    throw invalidInput(`epochs must be > 0, got ${o.epochs}`, 'epochs');
  if (o.objective === 'dpo' && !(o.dpo.beta > 0))
    throw invalidInput(`beta must be > 0, got ${o.dpo.beta}`, 'beta');
}

function countTokens(feeds: Feeds): number {
  let n = 0;
  for (const v of (feeds.attention_mask as TensorValue).data as BigInt64Array) n += Number(v);
  return n;
}

export async function trainModel(input: TrainInput): Promise<TrainResult> {
  const o = input.options;
  const n = input.examples.length;
  validate(o, n);
  const perEpoch = batchesPerEpoch(n, o.batchSize);
  const totalSteps = o.maxSteps ?? Math.ceil(o.epochs * perEpoch);
  const schedule = lrSchedule({ kind: o.schedule, lr: o.lr, totalSteps, warmupRatio: o.warmupRatio });
  const optimizer =
    o.optimizer === 'adamw'
      ? new AdamW({ weightDecay: o.weightDecay })
      : new Sgd({ weightDecay: o.weightDecay });
  if (input.resume) {
    if (input.resume.optimizer.kind !== o.optimizer) {
      throw invalidInput(
        `the saved state is for ${input.resume.optimizer.kind}, not ${o.optimizer}`,
        'optimizer',
      );
    }
    (optimizer as { loadState(s: unknown): void }).loadState(input.resume.optimizer.state);
  }
  const weights: Weights = new Map([...input.weights].map(([k, v]) => [k, v.slice()]));

  let referenceLogps: Float32Array | undefined;
  if (o.objective === 'dpo') {
    const pairs = input.examples as readonly PairExample[];
    const rows = [...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)];
    referenceLogps = await sequenceLogps(
      input.config,
      input.reference ?? input.weights,
      rows,
      input.padId,
      o.batchSize * 2,
    );
  }

  const graph = buildTrainingGraph(input.config, { objective: graphObjective[o.objective], dpo: o.dpo });
  const session = await OrtSession.create(graph.graph.toBytes());
  const weightFeeds = (): Feeds =>
    Object.fromEntries(
      graph.params.map((p) => [p.name, { data: weights.get(p.name) as Float32Array, dims: p.shape }]),
    );

  const feedsFor = (idx: number[]): Feeds => {
    if (o.objective === 'sft' || o.objective === 'pm')
      return lmFeeds(
        idx.map((i) => (input.examples as readonly Example[])[i] as Example),
        input.padId,
      );
    const pairs = idx.map((i) => (input.examples as readonly PairExample[])[i] as PairExample);
    if (o.objective === 'rm') return rewardFeeds(pairs, input.padId);
    const ref = new Float32Array(2 * idx.length);
    idx.forEach((i, k) => {
      ref[k] = (referenceLogps as Float32Array)[i] as number;
      ref[idx.length + k] = (referenceLogps as Float32Array)[n + i] as number;
    });
    return dpoFeeds(pairs, input.padId, ref);
  };

  const history: StepReport[] = [];
  const started = Date.now();
  let tokensSeen = 0;
  let step = input.resume?.step ?? 0;
  let stopped = false;
  try {
    while (step < totalSteps) {
      if (input.signal?.aborted) {
        stopped = true;
        break;
      }
      const epoch = Math.floor(step / perEpoch);
      const batch = batchIndices(n, o.batchSize, epoch, o.seed, o.shuffle)[step % perEpoch] as number[];
      const micro = Math.ceil(batch.length / o.gradAccum);
      const acc = new GradAccumulator();
      const sums: Record<string, number> = {};
      let tokens = 0;
      let parts = 0;
      for (let s = 0; s < batch.length; s += micro) {
        const data = feedsFor(batch.slice(s, s + micro));
        tokens += countTokens(data);
        const out = await session.run({ ...weightFeeds(), ...data });
        acc.add(new Map(graph.params.map((p) => [p.name, out[gradName(p.name)]?.data as Float32Array])));
        for (const m of graph.metrics) sums[m] = (sums[m] ?? 0) + Number(out[m]?.data[0]);
        parts++;
      }
      const grads = acc.finish();
      const gradNorm = clipGradNorm(grads, o.maxGradNorm);
      const lr = schedule(step);
      if (Number.isFinite(gradNorm)) optimizer.step(weights, grads, lr);
      step++;
      tokensSeen += tokens;
      const elapsedMs = Date.now() - started;
      const done = step - (input.resume?.step ?? 0);
      const report: StepReport = {
        step,
        totalSteps,
        epoch,
        lr,
        metrics: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / parts])),
        gradNorm,
        tokens,
        tokensPerSecond: tokensSeen / Math.max(elapsedMs / 1000, 1e-9),
        elapsedMs,
        etaMs: (elapsedMs / done) * (totalSteps - step),
      };
      history.push(report);
      await input.onStep?.(report);
      if (
        input.checkpoint &&
        input.checkpoint.every > 0 &&
        step % input.checkpoint.every === 0 &&
        step < totalSteps
      ) {
        await input.checkpoint.save(weights, stateOf(optimizer, step));
      }
    }
  } finally {
    await session.dispose();
  }
  return { weights, history, state: stateOf(optimizer, step), stopped };
}

function stateOf(optimizer: AdamW | Sgd, step: number): TrainerState {
  return optimizer instanceof AdamW
    ? { step, optimizer: { kind: 'adamw', state: optimizer.state() } }
    : { step, optimizer: { kind: 'sgd', state: optimizer.state() } };
}

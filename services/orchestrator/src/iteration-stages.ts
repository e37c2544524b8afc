/**
 * The stage functions of one iteration (generate -> judge -> pair -> train -> evaluate) and of pi_0's
 * evaluation. Each takes the inputs the stage table resolved and returns the result the table types; the
 * shards go through the run's ShardExecutor (model-stages.ts).
 */
import type { EvalSample } from '@rlhf/pipeline';
import type {
  EvaluateInputs,
  EvaluateResult,
  GenerateInputs,
  GenerateResult,
  JudgeInputs,
  JudgeResult,
  PairInputs,
  PairResult,
  PolicyMetrics,
  TrainInputs,
  TrainResult,
} from '@rlhf/workflow';
import { iterationPrompts, metricsOf, readEvalSamples, writeOfflinePairs } from './data-stages.js';
import { buildPairs } from './judged-pairs.js';
import { evaluateStage, generateStage, judgeStage, samplingEngineOf, trainStage } from './model-stages.js';
import type { StageContext } from './stage-context.js';
import { importTrainJobOutput, trainJobPathsFromEnv } from './trainjob-files.js';

const finiteOrNull = (x: number | null | undefined): number | null =>
  typeof x === 'number' && Number.isFinite(x) ? x : null;

export async function generate(ctx: StageContext, o: GenerateInputs): Promise<GenerateResult> {
  const all = await ctx.datasets.promptRows(o.prompts);
  return generateStage(ctx, ctx.iteration, 'generate', {
    policy: o.policy,
    prompts: iterationPrompts(all, o.perIteration, o.selectionSeed, ctx.iteration),
    n: o.samplesPerPrompt,
    seed: o.seed,
    ...samplingEngineOf(ctx.spec, ctx.iteration),
  });
}

export function judge(ctx: StageContext, o: JudgeInputs): Promise<JudgeResult> {
  return judgeStage(ctx, ctx.iteration, 'judge', o.shards, {
    type: o.type,
    ...(o.model ? { model: o.model } : {}),
    lengthPenalty: o.lengthPenalty,
    ...(o.task ? { task: o.task } : {}),
  });
}

export async function pair(ctx: StageContext, o: PairInputs): Promise<PairResult> {
  const r = o.offlinePairs
    ? await writeOfflinePairs(
        ctx.deps.store,
        await ctx.datasets.labelledPairs(o.offlinePairs, 'spec.pairs.dataset'),
        o.perIteration,
        ctx.iteration,
        o.output,
      )
    : await buildPairs(ctx.deps.store, o.judged ?? [], o.output, { strategy: o.strategy, seed: o.seed });
  return { pairs: r.pairs, meanScore: r.meanScore, samples: r.samples };
}

export async function train(ctx: StageContext, o: TrainInputs): Promise<TrainResult> {
  if (o.pairs === 0) return { model: o.base, loss: null, accuracy: null };
  // Trained by a Kubeflow TrainJob the controller ran: this stage imports the checkpoint it saved.
  if (ctx.spec.engines.train.type === 'trainjob')
    return importTrainJobOutput(ctx.deps.store, trainJobPathsFromEnv(), o.output);
  const r = await trainStage(ctx, ctx.iteration, 'train', {
    objective: 'dpo',
    base: o.base,
    reference: o.reference,
    dataset: o.dataset,
    output: o.output,
    epochs: o.epochs,
    learningRate: o.learningRate,
    batchSize: o.batchSize,
    seed: o.seed,
  });
  return {
    model: r.model,
    // The DPO term itself: the trainer's `loss` adds nllWeight x the chosen response's NLL to it.
    loss: r.metrics.dpo_loss ?? r.metrics.loss ?? null,
    accuracy: r.metrics.accuracy ?? r.metrics.reward_accuracy ?? null,
  };
}

/**
 * One sample per held-out prompt from the policy, its metrics against pi_0's samples (pi_0's own when this
 * is pi_0's evaluation), and the iteration's metrics record, which the controller reports.
 */
export async function evaluate(ctx: StageContext, o: EvaluateInputs): Promise<EvaluateResult> {
  const t = ctx.iteration;
  const r = await evaluateStage(ctx, t, {
    policy: o.policy,
    baseline: o.baseline,
    prompts: await ctx.datasets.promptRows(o.prompts),
    ...(o.rewardModel ? { rewardModel: o.rewardModel } : {}),
    ...(o.task ? { task: o.task } : {}),
    ...samplingEngineOf(ctx.spec, t),
  });
  const samples = await readEvalSamples(ctx.deps.store, r.outputs);
  const baseline = o.baselineOutputs ? await readEvalSamples(ctx.deps.store, o.baselineOutputs) : samples;
  const metrics = policyMetrics(o.policy, samples, baseline, o.lengthPenalty);
  await ctx.state.putIteration({
    ...metrics,
    iteration: t,
    ...(o.trained ?? {}),
    finishedAt: new Date().toISOString(),
  });
  const trained = o.trained
    ? ` pairs ${o.trained.pairs} dpo loss ${fmt(o.trained.dpoLoss)} acc ${fmt(o.trained.dpoAccuracy, 2)}`
    : '';
  ctx.ui.say(`${t === 0 ? 'pi_0' : `iteration ${t}/${ctx.spec.iterations}`}: ${line(metrics)}${trained}`);
  return { outputs: r.outputs, metrics };
}

function policyMetrics(
  policy: string,
  samples: readonly EvalSample[],
  baseline: readonly EvalSample[],
  lambda: number,
): PolicyMetrics {
  // The validation reward is the judge's objective: the reward minus the length penalty.
  const judged = samples.map((s) => ({
    ...s,
    proxyReward: s.proxyReward - lambda * [...s.completion].length,
  }));
  const m = metricsOf(judged, baseline);
  return {
    policy,
    proxyReward: finiteOrNull(m.proxyReward),
    goldReward: finiteOrNull(m.goldReward),
    winRate: finiteOrNull(m.winRate),
    kl: finiteOrNull(m.kl),
    meanLength: finiteOrNull(m.meanLength),
    grammaticalRate: finiteOrNull(m.grammaticalRate),
  };
}

const fmt = (x: number | null, digits = 3): string => (x === null ? '-' : x.toFixed(digits));

function line(m: PolicyMetrics): string {
  return `proxy ${fmt(m.proxyReward)} gold ${fmt(m.goldReward)} win ${fmt(m.winRate, 2)} kl ${fmt(m.kl, 2)} length ${fmt(m.meanLength, 1)} grammatical ${fmt(m.grammaticalRate, 2)}`;
}

/**
 * Setup's stage functions: the stages before iteration 1 that build everything from nothing. Data
 * synthesis and model initialisation are cheap and run here; SFT, the reward model and the preference model
 * are training shards for the dpo-trainer, reward-model and preference-model workers; `lengthPenalty: auto`
 * samples pi_0 twice per fit prompt, scores the samples with the reward model and regresses the score on
 * gold and length over the grammatical samples. Their inputs come from the stage table.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  initWeights,
  parseLlamaConfig,
  Rng,
  saveModelDir,
  tokenizerFromJson,
  trainBpe,
} from '@rlhf/ml-engine';
import { fitLengthPenaltyOnSamples, type LengthFitSample } from '@rlhf/pipeline';
import { invalidArgument } from '@rlhf/platform';
import { synthesizeSentimentTask, taskOracle } from '@rlhf/reference-task';
import { publishModelDir } from '@rlhf/service-kit';
import {
  type DataInputs,
  type DataResult,
  dataUri,
  type InitInputs,
  type JudgeModelResult,
  type LengthFitInputs,
  type LengthFitResult,
  type ModelResult,
  type SftResult,
  type TrainingInputs,
} from '@rlhf/workflow';
import { readJsonl } from './jsonl-artifacts.js';
import { type GenerationRow, generateStage, judgeStage, trainStage } from './model-stages.js';
import type { StageContext } from './stage-context.js';

export async function dataStage(ctx: StageContext, { setup: s }: DataInputs): Promise<DataResult> {
  const task = synthesizeSentimentTask({
    seed: s.seed,
    sftExamples: s.sftExamples,
    preferencePairs: s.preferencePairs,
    preferenceEvalPairs: s.preferenceEvalPairs,
    prompts: s.prompts,
    evalPrompts: s.evalPrompts,
  });
  const files: Record<string, string> = {};
  for (const [name, text] of Object.entries(task.files)) {
    files[name] = dataUri(ctx.run, name);
    await ctx.deps.store.put(files[name], new TextEncoder().encode(text));
  }
  const bayes = (task.summary as { bayesRate?: { eval?: number } }).bayesRate?.eval ?? null;
  ctx.ui.finish(
    ctx.label,
    `synthesized ${Object.keys(files).length} files (label Bayes rate ${bayes?.toFixed(3) ?? '-'})`,
  );
  return { files, labelBayesRate: bayes };
}

export async function initStage(ctx: StageContext, o: InitInputs): Promise<ModelResult> {
  const corpus = new TextDecoder()
    .decode(await ctx.deps.store.get(o.corpus))
    .trim()
    .split('\n');
  const tokenizerJson = trainBpe(corpus, { vocabSize: o.model.vocabSize });
  // vocabSize is an upper bound: BPE stops when the corpus has no pair left to merge (524 tokens on the
  // sentiment grammar, fewer on a small corpus). The model gets the vocabulary actually trained, so the
  // model never samples an id the tokenizer does not define.
  const vocabSize = tokenizerFromJson(tokenizerJson).vocabSize;
  const config = parseLlamaConfig({
    hidden_size: o.model.hiddenSize,
    intermediate_size: o.model.intermediateSize,
    num_attention_heads: o.model.numAttentionHeads,
    num_key_value_heads: o.model.numKeyValueHeads,
    num_hidden_layers: o.model.numHiddenLayers,
    max_position_embeddings: o.model.maxPositionEmbeddings,
    vocab_size: vocabSize,
  });
  const dir = await mkdtemp(join(tmpdir(), 'rlhf-init-'));
  try {
    const out = join(dir, 'model');
    await saveModelDir(out, { config, tokenizerJson, weights: initWeights(config, new Rng(o.seed)) });
    await publishModelDir(ctx.deps.store, out, o.output);
    ctx.ui.finish(ctx.label, `initialised a ${o.model.numHiddenLayers}-layer d=${o.model.hiddenSize} model`);
    return { model: o.output };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function sftStage(ctx: StageContext, o: TrainingInputs): Promise<SftResult> {
  const r = await trainStage(ctx, 0, ctx.label, {
    objective: 'sft',
    base: o.base,
    dataset: o.dataset,
    output: o.output,
    ...o.settings,
    seed: o.seed,
  });
  ctx.ui.finish(ctx.label, `loss ${r.metrics.loss?.toFixed(3) ?? '-'}`);
  return { model: r.model, loss: r.metrics.loss ?? null };
}

/** A judge model (BT reward model, or pairwise preference model) and its held-out accuracy. */
function judgeModelStage(objective: 'rm' | 'pm') {
  return async (ctx: StageContext, o: TrainingInputs): Promise<JudgeModelResult> => {
    const r = await trainStage(ctx, 0, ctx.label, {
      objective,
      base: o.base,
      dataset: o.dataset,
      ...(o.evalDataset ? { evalDataset: o.evalDataset } : {}),
      output: o.output,
      ...o.settings,
      seed: o.seed,
    });
    const accuracy = r.metrics.eval_accuracy ?? r.metrics.evalAccuracy ?? null;
    ctx.ui.finish(ctx.label, `held-out accuracy ${accuracy?.toFixed(3) ?? '-'}`);
    return { model: r.model, accuracy };
  };
}

export const rewardModelStage = judgeModelStage('rm');
export const preferenceModelStage = judgeModelStage('pm');

/**
 * lambda for `lengthPenalty: auto`: the length coefficient of reward ~ gold + chars over pi_0's grammatical
 * samples (all of them when too few are grammatical; see `fitLengthPenaltyOnSamples`).
 */
export async function lengthFitStage(ctx: StageContext, o: LengthFitInputs): Promise<LengthFitResult> {
  if (o.judgeType !== 'reward' || !o.rewardModel)
    throw invalidArgument(
      'spec.judge.lengthPenalty',
      '"auto" fits lambda for a reward-model judge',
      'set a number',
    );
  if (!o.task)
    throw invalidArgument(
      'spec.judge.task',
      'lengthPenalty "auto" regresses on a gold reward; name the task',
    );
  // What the fit reads is checked before it starts sampling.
  if (o.policyFromSpec) await ctx.datasets.modelMustExist(o.policy, 'spec.policy.model');
  if (o.rewardModelFromSpec) await ctx.datasets.modelMustExist(o.rewardModel, 'spec.judge.model');
  const prompts = await ctx.datasets.promptRows(o.prompts);
  const gen = await generateStage(ctx, 0, 'fit-generate', {
    policy: o.policy,
    prompts,
    n: 2,
    seed: o.seed,
  });
  const judged = await judgeStage(ctx, 0, 'fit-judge', gen.outputs, {
    type: 'reward',
    model: o.rewardModel,
    lengthPenalty: 0,
  });
  const oracle = taskOracle(o.task, 'spec.judge.task');
  const samples: LengthFitSample[] = [];
  for (const uri of judged.outputs)
    for (const row of await readJsonl<GenerationRow>(ctx.deps.store, uri))
      row.responses.forEach((text, k) => {
        const eos = row.finish_reasons[k] === 'eos';
        samples.push({
          reward: row.rewards?.[k] as number,
          gold: oracle.gold(row.prompt, text, eos),
          chars: [...text].length,
          grammatical: oracle.grammatical(row.prompt, text, eos),
        });
      });
  const fit = fitLengthPenaltyOnSamples(samples);
  ctx.ui.finish(
    ctx.label,
    `lambda ${fit.lambda.toExponential(3)} per character from ${fit.samples} ${fit.over === 'grammatical' ? 'grammatical ' : ''}of ${samples.length} samples`,
  );
  return { lambda: fit.lambda, fit: { ...fit } };
}

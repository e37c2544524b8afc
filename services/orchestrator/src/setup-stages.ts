/**
 * spec.setup: the stages before iteration 1 that build everything from nothing (docs/ARCHITECTURE.md, section 4).
 * Data synthesis and model initialisation are cheap and run here; SFT and the reward model are training
 * shards for the dpo-trainer and reward-model workers; `lengthPenalty: auto` samples pi_0 twice per fit
 * prompt, scores the samples with the reward model and regresses the score on gold and length over the
 * grammatical samples.
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
import { synthesizeSentimentTask, taskOracle } from '@rlhf/reference-task';
import type { SetupSpec } from '@rlhf/run-spec';
import { publishModelDir } from '@rlhf/service-kit';
import { readJsonl } from './jsonl-artifacts.js';
import { type GenerationRow, generateStage, judgeStage, type PromptRow, trainStage } from './model-stages.js';
import { once, type RunContext } from './run-context.js';
import { dataUri, modelUri } from './run-layout.js';

export interface SetupResult {
  policy: string;
  rewardModel: string;
  /** Trained when spec.setup.preferenceModel is given or the judge is a preference model without judge.model. */
  preferenceModel?: string;
  preferenceModelAccuracy?: number | null;
  prompts: string;
  evalPrompts: string;
  rewardModelAccuracy: number | null;
  labelBayesRate: number | null;
}

async function synthesize(ctx: RunContext, s: SetupSpec) {
  return once(ctx, 0, 'data', async () => {
    const task = synthesizeSentimentTask({
      seed: s.seed,
      sftExamples: s.sftExamples,
      preferencePairs: s.preferencePairs,
      preferenceEvalPairs: s.preferenceEvalPairs,
      prompts: s.prompts,
      evalPrompts: s.evalPrompts,
    });
    const uris: Record<string, string> = {};
    for (const [name, text] of Object.entries(task.files)) {
      uris[name] = dataUri(ctx.run, name);
      await ctx.deps.store.put(uris[name], new TextEncoder().encode(text));
    }
    const bayes = (task.summary as { bayesRate?: { eval?: number } }).bayesRate?.eval ?? null;
    ctx.ui.finish(
      'data',
      `synthesized ${Object.keys(uris).length} files (label Bayes rate ${bayes?.toFixed(3) ?? '-'})`,
    );
    return { files: uris, labelBayesRate: bayes };
  });
}

async function initModel(ctx: RunContext, s: SetupSpec, corpusUri: string) {
  return once(ctx, 0, 'init', async () => {
    const corpus = new TextDecoder()
      .decode(await ctx.deps.store.get(corpusUri))
      .trim()
      .split('\n');
    const tokenizerJson = trainBpe(corpus, { vocabSize: s.model.vocabSize });
    // vocabSize is an upper bound: BPE stops when the corpus has no pair left to merge (524 tokens on the
    // sentiment grammar, fewer on a small corpus). The model gets the vocabulary actually trained, as in the
    // in-process pipeline, so it never samples an id the tokenizer does not define.
    const vocabSize = tokenizerFromJson(tokenizerJson).vocabSize;
    const config = parseLlamaConfig({
      hidden_size: s.model.hiddenSize,
      intermediate_size: s.model.intermediateSize,
      num_attention_heads: s.model.numAttentionHeads,
      num_key_value_heads: s.model.numKeyValueHeads,
      num_hidden_layers: s.model.numHiddenLayers,
      max_position_embeddings: s.model.maxPositionEmbeddings,
      vocab_size: vocabSize,
    });
    const dir = await mkdtemp(join(tmpdir(), 'rlhf-init-'));
    try {
      const out = join(dir, 'model');
      await saveModelDir(out, { config, tokenizerJson, weights: initWeights(config, new Rng(s.seed)) });
      const uri = modelUri(ctx.run, 0, 'init');
      await publishModelDir(ctx.deps.store, out, uri);
      ctx.ui.finish('init', `initialised a ${s.model.numHiddenLayers}-layer d=${s.model.hiddenSize} model`);
      return { model: uri };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

export async function runSetup(ctx: RunContext, s: SetupSpec): Promise<SetupResult> {
  const data = await synthesize(ctx, s);
  const files = data.files as Record<string, string>;
  const init = await initModel(ctx, s, files['corpus.txt'] as string);
  const sft = await once(ctx, 0, 'sft', async () => {
    const r = await trainStage(ctx, 0, 'sft', {
      objective: 'sft',
      base: init.model as string,
      dataset: files['sft.jsonl'] as string,
      output: modelUri(ctx.run, 0, 'sft'),
      epochs: s.sft.epochs,
      learningRate: s.sft.learningRate,
      batchSize: s.sft.batchSize,
      seed: s.seed,
    });
    ctx.ui.finish('sft', `loss ${r.metrics.loss?.toFixed(3) ?? '-'}`);
    return { model: r.model, loss: r.metrics.loss ?? null };
  });
  const rmStage = await once(ctx, 0, 'reward-model', async () => {
    const r = await trainStage(ctx, 0, 'reward-model', {
      objective: 'rm',
      base: sft.model as string,
      dataset: files['preferences.jsonl'] as string,
      evalDataset: files['preferences-eval.jsonl'] as string,
      output: modelUri(ctx.run, 0, 'rm'),
      epochs: s.rewardModel.epochs,
      learningRate: s.rewardModel.learningRate,
      batchSize: s.rewardModel.batchSize,
      seed: s.seed,
    });
    const accuracy = r.metrics.eval_accuracy ?? r.metrics.evalAccuracy ?? null;
    ctx.ui.finish(
      'reward-model',
      `held-out accuracy ${accuracy?.toFixed(3) ?? '-'} (label Bayes rate ${(data.labelBayesRate as number | null)?.toFixed(3) ?? '-'})`,
    );
    return { model: r.model, accuracy };
  });
  const pmSettings =
    s.preferenceModel ??
    (ctx.spec.judge.type === 'preference' && !ctx.spec.judge.model ? s.rewardModel : null);
  const pmStage = pmSettings
    ? await once(ctx, 0, 'preference-model', async () => {
        const r = await trainStage(ctx, 0, 'preference-model', {
          objective: 'pm',
          base: sft.model as string,
          dataset: files['preferences.jsonl'] as string,
          evalDataset: files['preferences-eval.jsonl'] as string,
          output: modelUri(ctx.run, 0, 'pm'),
          epochs: pmSettings.epochs,
          learningRate: pmSettings.learningRate,
          batchSize: pmSettings.batchSize,
          seed: s.seed,
        });
        const accuracy = r.metrics.eval_accuracy ?? r.metrics.evalAccuracy ?? null;
        ctx.ui.finish('preference-model', `held-out accuracy ${accuracy?.toFixed(3) ?? '-'}`);
        return { model: r.model, accuracy };
      })
    : null;
  return {
    ...(pmStage
      ? {
          preferenceModel: pmStage.model as string,
          preferenceModelAccuracy: pmStage.accuracy as number | null,
        }
      : {}),
    policy: sft.model as string,
    rewardModel: rmStage.model as string,
    prompts: files['prompts.jsonl'] as string,
    evalPrompts: files['eval.jsonl'] as string,
    rewardModelAccuracy: (rmStage.accuracy as number | null) ?? null,
    labelBayesRate: (data.labelBayesRate as number | null) ?? null,
  };
}

/**
 * lambda for `lengthPenalty: auto`: the length coefficient of reward ~ gold + chars over pi_0's grammatical
 * samples (all of them when too few are grammatical; see `fitLengthPenaltyOnSamples`).
 */
export async function fitLambda(
  ctx: RunContext,
  o: { policy: string; rewardModel: string; prompts: readonly PromptRow[]; task: string; seed: number },
): Promise<{ lambda: number; fit: Record<string, unknown> }> {
  const r = await once(ctx, 0, 'length-fit', async () => {
    const gen = await generateStage(ctx, 0, 'fit-generate', {
      policy: o.policy,
      prompts: o.prompts,
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
      'length-fit',
      `lambda ${fit.lambda.toExponential(3)} per character from ${fit.samples} ${fit.over === 'grammatical' ? 'grammatical ' : ''}of ${samples.length} samples`,
    );
    return { lambda: fit.lambda, fit: { ...fit } };
  });
  return { lambda: r.lambda as number, fit: r.fit as Record<string, unknown> };
}

/**
 * Everything the reference task needs before its first online iteration, built from one seed (docs/ARCHITECTURE.md
 * section 6): the synthetic data, a byte-level BPE tokenizer, the SFT policy pi_0, a Bradley-Terry reward
 * model trained on the simulated annotators' labels (its held-out accuracy next to the labels' Bayes rate),
 * and the length penalty fitted on pi_0's samples.
 */
import {
  buildInferenceModel,
  comparePairs,
  defaultTrainOptions,
  encodePair,
  encodeSft,
  generateTexts,
  inferenceSessionOptions,
  initWeights,
  type LlamaConfig,
  type LoadedModelDir,
  OrtSession,
  parseLlamaConfig,
  preferenceExample,
  Rng,
  type StepReport,
  scoreResponses,
  tokenizerFromJson,
  trainBpe,
  trainModel,
  type Weights,
} from '@rlhf/ml-engine';
import {
  goldReward,
  isGrammatical,
  sentimentOracle,
  synthesizeSentimentTask,
  type TaskOracle,
} from '@rlhf/reference-task';
import { fitLengthPenaltyOnSamples, type SampleLengthFit } from './length-penalty.js';

/** The reference task's oracle; defined with the task, re-exported for existing imports. */
export { sentimentOracle } from '@rlhf/reference-task';

import { referenceRecipe } from './reference-recipe.js';

export { referenceRecipe };

export interface ReferenceSetupOptions {
  seed: number;
  /** Overrides the recipe's SFT epochs. */
  sftEpochs?: number;
  /** Smaller data and fewer steps, for tests. */
  quick: boolean;
  /** Also train the pairwise preference model (variant p). */
  preferenceModel?: boolean;
  onStage?: (stage: string, detail: Record<string, unknown>) => void;
  onStep?: (stage: string, r: StepReport) => void;
}

export interface ReferenceSetup {
  policy: LoadedModelDir;
  rewardModel: LoadedModelDir;
  /** With `preferenceModel: true`: the PM and its held-out accuracy on the annotator labels. */
  preferenceModel?: LoadedModelDir;
  preferenceModelAccuracy?: number;
  prompts: string[];
  evalPrompts: string[];
  oracle: TaskOracle;
  rewardModelAccuracy: number;
  bayesRate: number;
  lengthFit: SampleLengthFit;
  files: Record<string, string>;
}

function memoryModel(
  config: LlamaConfig,
  weights: Weights,
  tokenizerJson: ReturnType<typeof trainBpe>,
): LoadedModelDir {
  return { config, tokenizer: tokenizerFromJson(tokenizerJson), tokenizerJson, weights, dir: '(memory)' };
}

export async function prepareReferenceTask(o: ReferenceSetupOptions): Promise<ReferenceSetup> {
  const task = synthesizeSentimentTask({
    seed: o.seed,
    sftExamples: o.quick ? 600 : 4000,
    preferencePairs: o.quick ? 400 : 4000,
    preferenceEvalPairs: o.quick ? 100 : 500,
    prompts: o.quick ? 256 : 2048,
    evalPrompts: o.quick ? 32 : 256,
  });
  const rows = (name: string): Record<string, string>[] =>
    (task.files[name] ?? '')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>);
  const recipe = referenceRecipe;
  const tokenizerJson = trainBpe((task.files['corpus.txt'] ?? '').trim().split('\n'), {
    vocabSize: recipe.model.vocabSize,
  });
  const tok = tokenizerFromJson(tokenizerJson);
  const shape = {
    hidden_size: recipe.model.hiddenSize,
    intermediate_size: recipe.model.intermediateSize,
    num_attention_heads: recipe.model.numAttentionHeads,
    num_key_value_heads: recipe.model.numKeyValueHeads,
    num_hidden_layers: recipe.model.numHiddenLayers,
    vocab_size: tok.vocabSize,
    max_position_embeddings: recipe.model.maxPositionEmbeddings,
  };
  const lmConfig = parseLlamaConfig(shape);
  const rmConfig = parseLlamaConfig({ ...shape, architectures: ['LlamaForSequenceClassification'] });
  o.onStage?.('data', { ...(task.summary.counts as object) });

  const sftRows = rows('sft.jsonl').map((r) =>
    encodeSft(
      tok,
      {
        kind: 'prompt-completion',
        prompt: { text: r.prompt as string },
        completion: { text: r.completion as string },
      },
      recipe.model.maxPositionEmbeddings,
    ),
  );
  const sft = await trainModel({
    config: lmConfig,
    weights: initWeights(lmConfig, new Rng(o.seed)),
    padId: tok.padId,
    examples: sftRows,
    options: {
      ...defaultTrainOptions,
      objective: 'sft',
      lr: recipe.sft.learningRate,
      epochs: o.quick ? 1 : (o.sftEpochs ?? recipe.sft.epochs),
      batchSize: recipe.sft.batchSize,
      seed: o.seed,
    },
    onStep: (r) => o.onStep?.('sft', r),
  });
  const policy = memoryModel(lmConfig, sft.weights, tokenizerJson);
  o.onStage?.('sft', { steps: sft.history.length, loss: sft.history.at(-1)?.metrics.loss });

  // The reward model starts from the SFT backbone with a fresh score head, as in the paper's recipe. The head
  // is drawn from the setup seed's stream, as the reward-model service draws it for a training job from a
  // policy (service-kit train-job), so this path and `rlhf run` train the same reward model.
  const rmInit = initWeights(rmConfig, new Rng(o.seed));
  for (const [k, v] of sft.weights) if (rmInit.has(k)) rmInit.set(k, v.slice());
  const pair = (r: Record<string, string>) =>
    encodePair(
      tok,
      {
        prompt: { text: r.prompt as string },
        chosen: { text: r.chosen as string },
        rejected: { text: r.rejected as string },
      },
      recipe.model.maxPositionEmbeddings,
    );
  const rm = await trainModel({
    config: rmConfig,
    weights: rmInit,
    padId: tok.padId,
    examples: rows('preferences.jsonl').map(pair),
    options: {
      ...defaultTrainOptions,
      objective: 'rm',
      lr: recipe.rewardModel.learningRate,
      epochs: o.quick ? 2 : recipe.rewardModel.epochs,
      batchSize: recipe.rewardModel.batchSize,
      seed: o.seed,
    },
    onStep: (r) => o.onStep?.('reward-model', r),
  });
  const rewardModel = memoryModel(rmConfig, rm.weights, tokenizerJson);
  const pm = o.preferenceModel
    ? await trainPreferenceModel(o, rows, sft.weights, lmConfig, tokenizerJson)
    : undefined;
  const rmSession = await OrtSession.create(
    buildInferenceModel(rmConfig, rm.weights),
    inferenceSessionOptions,
  );
  const policySession = await OrtSession.create(
    buildInferenceModel(lmConfig, sft.weights),
    inferenceSessionOptions,
  );
  try {
    const heldOut = rows('preferences-eval.jsonl');
    const scored = await scoreResponses(
      rewardModel,
      rmSession,
      heldOut.map((p) => ({
        prompt: p.prompt as string,
        responses: [p.chosen as string, p.rejected as string],
      })),
      0,
    );
    const rewardModelAccuracy =
      scored.filter((s) => (s.rewards[0] as number) > (s.rewards[1] as number)).length /
      Math.max(scored.length, 1);
    const bayesRate = (task.summary as { bayesRate: { eval: number } }).bayesRate.eval;
    o.onStage?.('reward-model', { accuracy: rewardModelAccuracy, bayesRate });

    const fitPrompts = rows('prompts.jsonl')
      .slice(0, o.quick ? 64 : recipe.lengthFitPrompts)
      .map((r) => ({ text: r.prompt as string }));
    const gens = await generateTexts(policy, policySession, fitPrompts, {
      n: 2,
      temperature: 1,
      topP: 1,
      topK: 0,
      greedy: false,
      maxNewTokens: 48,
      seed: o.seed,
    });
    const flat = gens.flatMap((g) =>
      g.responses.map((r, k) => ({ prompt: g.prompt, r, eos: g.finish_reasons[k] === 'eos' })),
    );
    const fitScores = await scoreResponses(
      rewardModel,
      rmSession,
      flat.map((f) => ({ prompt: f.prompt, responses: [f.r] })),
      0,
    );
    const lengthFit = fitLengthPenaltyOnSamples(
      flat.map((f, i) => {
        const g = { prompt: f.prompt, completion: f.r, endedWithEos: f.eos };
        return {
          reward: (fitScores[i] as { rewards: number[] }).rewards[0] as number,
          gold: goldReward(g),
          chars: [...f.r].length,
          grammatical: isGrammatical(g),
        };
      }),
    );
    o.onStage?.('length-penalty', { ...lengthFit });
    return {
      policy,
      rewardModel,
      ...(pm ? { preferenceModel: pm.model, preferenceModelAccuracy: pm.accuracy } : {}),
      prompts: rows('prompts.jsonl').map((r) => r.prompt as string),
      evalPrompts: rows('eval.jsonl').map((r) => r.prompt as string),
      oracle: sentimentOracle,
      rewardModelAccuracy,
      bayesRate,
      lengthFit,
      files: task.files,
    };
  } finally {
    await rmSession.dispose();
    await policySession.dispose();
  }
}

/** The PM of variant p from the SFT weights (its LM head predicts the answer token), with held-out accuracy. */
async function trainPreferenceModel(
  o: ReferenceSetupOptions,
  rows: (name: string) => Record<string, string>[],
  sftWeights: Weights,
  lmConfig: LlamaConfig,
  tokenizerJson: ReturnType<typeof trainBpe>,
): Promise<{ model: LoadedModelDir; accuracy: number }> {
  const r = referenceRecipe.preferenceModel;
  const config = parseLlamaConfig({ ...lmConfig, max_position_embeddings: r.maxPositionEmbeddings });
  const tok = tokenizerFromJson(tokenizerJson);
  // The A/B order of each pair from the setup seed's stream, as the preference-model service draws it.
  const rng = new Rng(o.seed);
  const examples = rows('preferences.jsonl').map((p) =>
    preferenceExample(
      tok,
      p.prompt as string,
      p.chosen as string,
      p.rejected as string,
      rng,
      r.maxPositionEmbeddings,
    ),
  );
  const trained = await trainModel({
    config,
    weights: sftWeights,
    padId: tok.padId,
    examples,
    options: {
      ...defaultTrainOptions,
      objective: 'pm',
      lr: r.learningRate,
      epochs: o.quick ? 2 : r.epochs,
      batchSize: r.batchSize,
      seed: o.seed,
    },
    onStep: (s) => o.onStep?.('preference-model', s),
  });
  const model = memoryModel(config, trained.weights, tokenizerJson);
  const session = await OrtSession.create(
    buildInferenceModel(config, trained.weights),
    inferenceSessionOptions,
  );
  try {
    const heldOut = rows('preferences-eval.jsonl');
    const c = await comparePairs(
      model,
      session,
      heldOut.map((p) => ({ prompt: p.prompt as string, a: p.chosen as string, b: p.rejected as string })),
    );
    const accuracy = c.filter((x) => x.probABetter > 0.5).length / Math.max(c.length, 1);
    o.onStage?.('preference-model', { accuracy });
    return { model, accuracy };
  } finally {
    await session.dispose();
  }
}

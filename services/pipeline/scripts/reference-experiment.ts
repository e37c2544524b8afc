/**
 * The reference task end to end in one process (DESIGN.md section 6): synthesize data, train a tokenizer,
 * SFT a tiny policy, train a Bradley-Terry RM on annotator labels, fit the length penalty, then run online
 * iterative DPO for one variant and print per-iteration metrics as JSON lines.
 *
 *   node --import tsx services/pipeline/scripts/reference-experiment.ts [--variant a|b|g] [--seed N] [--quick]
 *
 * Variants: a = online judged by the RM without penalty, b = with the fitted penalty, g = judged by the gold.
 */
import { parseArgs } from 'node:util';
import {
  defaultTrainOptions,
  encodePair,
  encodeSft,
  initWeights,
  type LoadedModelDir,
  parseLlamaConfig,
  Rng,
  tokenizerFromJson,
  trainBpe,
  trainModel,
} from '@rlhf/ml-engine';
import { goldReward, isGrammatical, synthesizeSentimentTask, wordCount } from '@rlhf/reference-task';
import { fitLengthPenalty } from '../src/length-penalty.js';
import { defaultLoopConfig, runLocalIterations } from '../src/local-loop.js';

const { values } = parseArgs({
  options: {
    variant: { type: 'string', default: 'b' },
    seed: { type: 'string', default: '1' },
    quick: { type: 'boolean', default: false },
  },
});
const seed = Number(values.seed);
const quick = values.quick === true;
const started = Date.now();
const log = (event: string, data: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ event, t: (Date.now() - started) / 1000, ...data })}\n`);
};

const task = synthesizeSentimentTask({
  seed,
  sftExamples: quick ? 1000 : 4000,
  preferencePairs: quick ? 1000 : 4000,
  preferenceEvalPairs: 500,
  prompts: 2048,
  evalPrompts: quick ? 64 : 256,
});
const lines = (name: string): Record<string, string>[] =>
  (task.files[name] ?? '')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, string>);
const tokenizerJson = trainBpe((task.files['corpus.txt'] ?? '').trim().split('\n'), { vocabSize: 400 });
const tok = tokenizerFromJson(tokenizerJson);
const base = {
  hidden_size: 64,
  intermediate_size: 172,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 2,
  vocab_size: tok.vocabSize,
  max_position_embeddings: 96,
};
const lmConfig = parseLlamaConfig(base);
const rmConfig = parseLlamaConfig({ ...base, architectures: ['LlamaForSequenceClassification'] });
const dir = (config: typeof lmConfig, weights: Map<string, Float32Array>): LoadedModelDir =>
  ({ config, tokenizer: tok, tokenizerJson, weights, dir: 'memory' }) as LoadedModelDir;

// SFT.
const sftRows = lines('sft.jsonl').map((r) =>
  encodeSft(
    tok,
    {
      kind: 'prompt-completion',
      prompt: { text: r.prompt as string },
      completion: { text: r.completion as string },
    },
    96,
  ),
);
const sft = await trainModel({
  config: lmConfig,
  weights: initWeights(lmConfig, new Rng(seed)),
  padId: tok.padId,
  examples: sftRows,
  options: { ...defaultTrainOptions, objective: 'sft', lr: 3e-3, epochs: quick ? 2 : 3, batchSize: 32 },
});
log('sft', { steps: sft.history.length, loss: sft.history.at(-1)?.metrics.loss });

// Reward model: the SFT backbone with a fresh score head, trained on annotator labels.
const rmInit = initWeights(rmConfig, new Rng(seed + 1));
for (const [k, v] of sft.weights) if (rmInit.has(k)) rmInit.set(k, v.slice());
const pairOf = (r: Record<string, string>) =>
  encodePair(
    tok,
    {
      prompt: { text: r.prompt as string },
      chosen: { text: r.chosen as string },
      rejected: { text: r.rejected as string },
    },
    96,
  );
const rm = await trainModel({
  config: rmConfig,
  weights: rmInit,
  padId: tok.padId,
  examples: lines('preferences.jsonl').map(pairOf),
  options: { ...defaultTrainOptions, objective: 'rm', lr: 1e-3, epochs: 2, batchSize: 32 },
});
const { scoreResponses, buildInferenceModel, OrtSession, generateTexts } = await import('@rlhf/ml-engine');
const rmModel = dir(rmConfig, rm.weights);
const rmSession = await OrtSession.create(buildInferenceModel(rmConfig, rm.weights));
const heldOut = lines('preferences-eval.jsonl');
const scored = await scoreResponses(
  rmModel,
  rmSession,
  heldOut.map((p) => ({ prompt: p.prompt as string, responses: [p.chosen as string, p.rejected as string] })),
  0,
);
const rmAccuracy =
  scored.filter((s) => (s.rewards[0] as number) > (s.rewards[1] as number)).length / scored.length;
log('reward-model', {
  accuracy: rmAccuracy,
  bayesRate: (task.summary as { bayesRate: { eval: number } }).bayesRate.eval,
});

// Length penalty fitted on SFT samples.
const sftModel = dir(lmConfig, sft.weights);
const sftSession = await OrtSession.create(buildInferenceModel(lmConfig, sft.weights));
const fitPrompts = lines('prompts.jsonl')
  .slice(0, quick ? 128 : 512)
  .map((r) => ({ text: r.prompt as string }));
const gens = await generateTexts(sftModel, sftSession, fitPrompts, {
  n: 2,
  temperature: 1,
  topP: 1,
  topK: 0,
  greedy: false,
  maxNewTokens: 48,
  seed,
});
const flat = gens.flatMap((g) =>
  g.responses.map((r, k) => ({ prompt: g.prompt, r, eos: g.finish_reasons[k] === 'eos' })),
);
const fitScores = await scoreResponses(
  rmModel,
  rmSession,
  flat.map((f) => ({ prompt: f.prompt, responses: [f.r] })),
  0,
);
const fit = fitLengthPenalty(
  fitScores.map((s) => s.rewards[0] as number),
  flat.map((f) => goldReward({ prompt: f.prompt, completion: f.r, endedWithEos: f.eos })),
  flat.map((f) => [...f.r].length),
);
log('length-penalty', { ...fit });
await rmSession.dispose();
await sftSession.dispose();

const variant = values.variant as string;
const result = await runLocalIterations({
  policy: sftModel,
  rewardModel: rmModel,
  prompts: lines('prompts.jsonl').map((r) => r.prompt as string),
  evalPrompts: lines('eval.jsonl').map((r) => r.prompt as string),
  oracle: {
    gold: (prompt, completion, endedWithEos) => goldReward({ prompt, completion, endedWithEos }),
    grammatical: (prompt, completion, endedWithEos) => isGrammatical({ prompt, completion, endedWithEos }),
    words: wordCount,
  },
  config: {
    ...defaultLoopConfig,
    seed,
    promptsPerIteration: quick ? 128 : 256,
    judge: variant === 'g' ? 'gold' : 'reward',
    lengthPenalty: variant === 'b' ? fit.lambda : 0,
  },
  onIteration: (r) => log('iteration', { variant, ...r }),
});
log('initial', { ...result.initial });
log('done', { seconds: (Date.now() - started) / 1000 });

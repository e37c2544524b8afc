/**
 * Online iterative DPO (Algorithm 2) in one process, on models held in memory: the stage functions the
 * distributed run shards over NATS, called directly. Used by experiments and by tests of the ML dynamics;
 * `rlhf run` drives the same stages through workers.
 */
import {
  buildInferenceModel,
  defaultTrainOptions,
  type Generation,
  generateTexts,
  inferenceSessionOptions,
  type LoadedModelDir,
  OrtSession,
  type PairExample,
  Rng,
  rankTournament,
  scoreResponses,
  sequenceLogps,
  type TrainOptions,
  textPromptIds,
  trainModel,
  type Weights,
} from '@rlhf/ml-engine';
import type { TaskOracle } from '@rlhf/reference-task';
import { type EvalMetrics, type EvalSample, evaluationMetrics } from './evaluation.js';
import { buildPair, type PairStrategy } from './pairs.js';
import { meanOfLastSteps } from './step-metrics.js';

/** The task's gold reward and grammar; defined with the reference task, re-exported for existing imports. */
export type { TaskOracle } from '@rlhf/reference-task';

export interface LoopConfig {
  iterations: number;
  promptsPerIteration: number;
  samplesPerPrompt: number;
  temperature: number;
  maxNewTokens: number;
  seed: number;
  /** reward: the BT RM (minus lengthPenalty per character); preference: PM tournament; gold: the task's gold. */
  judge: 'reward' | 'preference' | 'gold';
  lengthPenalty: number;
  pairs: PairStrategy;
  reference: 'initial' | 'previous';
  dpo: TrainOptions;
}

/**
 * The reference task's online recipe (DESIGN.md section 6), the same as examples/quickstart.yaml.
 * - DPO lr 2e-3 for 4 epochs (was 1e-3 for 2): with the word-level SFT policy and the better reward model,
 *   1e-3 x 2 epochs (16 optimizer steps an iteration) under-optimised: gold still climbing steeply at iteration 3,
 *   KL ~2.5. 512 prompts an iteration reached about as much at twice the generation cost; 16 samples a prompt less.
 * - NLL weight 2 (was 1; RPO-style term on the chosen response): at weight 1 some seeds lost the grammar at
 *   iteration 3 by exploiting the RM with repeated sentiment words ("i loved loved it ." scores above "i loved
 *   it ." under the RM, -2 under the gold), and which seeds did flipped with a 0.1% change of lambda. At weight 2,
 *   seeds 1-6 all stayed >= 96% grammatical (beta 0.2 or 0.3 at weight 1 helped less).
 */
export const defaultLoopConfig: LoopConfig = {
  iterations: 3,
  promptsPerIteration: 256,
  samplesPerPrompt: 8,
  temperature: 1,
  maxNewTokens: 48,
  seed: 42,
  judge: 'reward',
  lengthPenalty: 0,
  pairs: 'maxMin',
  reference: 'initial',
  dpo: {
    ...defaultTrainOptions,
    objective: 'dpo',
    lr: 2e-3,
    epochs: 4,
    batchSize: 32,
    dpo: { beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0, nllWeight: 2 },
  },
};

export interface IterationReport {
  iteration: number;
  pairs: number;
  meanJudgeScore: number;
  dpoLoss: number;
  dpoAccuracy: number;
  eval: EvalMetrics;
  seconds: { generate: number; judge: number; train: number; evaluate: number };
}

type Model = LoadedModelDir;

const withWeights = (m: Model, weights: Weights): Model => ({ ...m, weights });

async function sessionFor(m: Model): Promise<OrtSession> {
  return OrtSession.create(buildInferenceModel(m.config, m.weights), inferenceSessionOptions);
}

async function sample(
  m: Model,
  prompts: string[],
  n: number,
  cfg: LoopConfig,
  seed: number,
): Promise<Generation[]> {
  const s = await sessionFor(m);
  try {
    return await generateTexts(
      m,
      s,
      prompts.map((text) => ({ text })),
      {
        n,
        temperature: cfg.temperature,
        topP: 1,
        topK: 0,
        greedy: false,
        maxNewTokens: cfg.maxNewTokens,
        seed,
      },
    );
  } finally {
    await s.dispose();
  }
}

async function rewardScores(
  rm: Model | undefined,
  gens: Generation[],
  lambda: number,
): Promise<{ raw: number[][]; penalized: number[][] }> {
  if (!rm)
    return {
      raw: gens.map((g) => g.responses.map(() => 0)),
      penalized: gens.map((g) => g.responses.map(() => 0)),
    };
  const s = await sessionFor(rm);
  try {
    const scored = await scoreResponses(
      rm,
      s,
      gens.map((g) => ({ prompt: g.prompt, responses: g.responses })),
      lambda,
    );
    return { raw: scored.map((x) => x.rewards), penalized: scored.map((x) => x.penalizedRewards) };
  } finally {
    await s.dispose();
  }
}

/**
 * PM judge: a knock-out tournament per prompt (ml-engine `rankTournament`: position-debiased comparisons); a
 * response's score is minus its rank, so maxMin pairs the champion with the loser of the losers' bracket.
 */
async function preferenceScores(pm: Model | undefined, gens: Generation[]): Promise<number[][]> {
  if (!pm) throw new Error('judge "preference" needs a preference model');
  const s = await sessionFor(pm);
  try {
    const out: number[][] = [];
    for (const g of gens) {
      const { ranking } = await rankTournament(pm, s, g.prompt, g.responses);
      const scores = g.responses.map(() => 0);
      ranking.forEach((i, rank) => {
        scores[i] = -rank;
      });
      out.push(scores);
    }
    return out;
  } finally {
    await s.dispose();
  }
}

async function evaluate(
  policy: Model,
  initial: Model,
  rm: Model | undefined,
  prompts: string[],
  cfg: LoopConfig,
  oracle: TaskOracle,
): Promise<EvalSample[]> {
  const gens = await sample(policy, prompts, 1, cfg, cfg.seed + 7919);
  // The proxy reward is the judge's objective, the reward model's score minus the length penalty, as
  // `rlhf run` reports it.
  const proxy = await rewardScores(rm, gens, cfg.lengthPenalty);
  const tok = policy.tokenizer;
  const rows = gens.map((g) => {
    const ids = [...textPromptIds(tok, g.prompt), ...(g.response_ids[0] as number[])];
    return { ids, targets: ids.map((_, i) => i > ids.length - 1 - (g.response_ids[0] as number[]).length) };
  });
  const initialLogps = await sequenceLogps(initial.config, initial.weights, rows, tok.padId);
  return gens.map((g, i) => {
    const completion = g.responses[0] as string;
    const eos = g.finish_reasons[0] === 'eos';
    return {
      prompt: g.prompt,
      completion,
      endedWithEos: eos,
      logp: (g.logprobs[0] as number[]).reduce((a, b) => a + b, 0),
      logpInitial: initialLogps[i] as number,
      proxyReward: (proxy.penalized[i] as number[])[0] as number,
      gold: oracle.gold(g.prompt, completion, eos),
      grammatical: oracle.grammatical(g.prompt, completion, eos),
      words: oracle.words(completion),
    };
  });
}

export interface LoopInput {
  policy: Model;
  rewardModel?: Model;
  /** The judge of `judge: 'preference'` (a causal LM trained on the A/B format). */
  preferenceModel?: Model;
  prompts: string[];
  evalPrompts: string[];
  oracle: TaskOracle;
  config: LoopConfig;
  onIteration?: (r: IterationReport) => void;
}

export interface LoopResult {
  initial: EvalMetrics;
  iterations: IterationReport[];
  policies: Weights[];
}

export async function runLocalIterations(input: LoopInput): Promise<LoopResult> {
  const cfg = input.config;
  const pi0 = input.policy;
  const order = new Rng(cfg.seed).shuffle(input.prompts.map((_, i) => i));
  const baseline = await evaluate(pi0, pi0, input.rewardModel, input.evalPrompts, cfg, input.oracle);
  const reports: IterationReport[] = [];
  const policies: Weights[] = [];
  let current = pi0;
  for (let t = 1; t <= cfg.iterations; t++) {
    const clock = Date.now();
    const batch = order
      .slice(((t - 1) * cfg.promptsPerIteration) % order.length)
      .slice(0, cfg.promptsPerIteration)
      .map((i) => input.prompts[i] as string);
    const gens = await sample(current, batch, cfg.samplesPerPrompt, cfg, cfg.seed + t);
    const tGen = Date.now();
    const scores =
      cfg.judge === 'gold'
        ? gens.map((g) =>
            g.responses.map((r, k) => input.oracle.gold(g.prompt, r, g.finish_reasons[k] === 'eos')),
          )
        : cfg.judge === 'preference'
          ? await preferenceScores(input.preferenceModel, gens)
          : (await rewardScores(input.rewardModel, gens, cfg.lengthPenalty)).penalized;
    const tJudge = Date.now();
    const rng = new Rng(cfg.seed * 31 + t);
    const tok = current.tokenizer;
    const pairs: PairExample[] = [];
    let judgeSum = 0;
    let judgeCount = 0;
    gens.forEach((g, i) => {
      const s = scores[i] as number[];
      judgeSum += s.reduce((a, b) => a + b, 0);
      judgeCount += s.length;
      const prompt = [...textPromptIds(tok, g.prompt)];
      const pair = buildPair(
        { responses: g.response_ids, scores: s, key: (ids) => ids.join(',') },
        cfg.pairs,
        rng,
      );
      if (pair) {
        const row = (ids: number[]) => ({
          ids: [...prompt, ...ids],
          targets: [...prompt.map(() => false), ...ids.map(() => true)],
        });
        pairs.push({ chosen: row(pair.chosen), rejected: row(pair.rejected) });
      }
    });
    const reference = cfg.reference === 'initial' ? pi0.weights : current.weights;
    const trained = pairs.length
      ? await trainModel({
          config: current.config,
          weights: current.weights,
          padId: tok.padId,
          examples: pairs,
          options: { ...cfg.dpo, objective: 'dpo', seed: cfg.seed + t },
          reference,
        })
      : null;
    const tTrain = Date.now();
    if (trained) current = withWeights(current, trained.weights);
    policies.push(current.weights);
    const evalSamples = await evaluate(current, pi0, input.rewardModel, input.evalPrompts, cfg, input.oracle);
    const last = trained ? meanOfLastSteps(trained.history.map((h) => h.metrics)) : {};
    const report: IterationReport = {
      iteration: t,
      pairs: pairs.length,
      meanJudgeScore: judgeSum / Math.max(judgeCount, 1),
      dpoLoss: last.dpo_loss ?? Number.NaN,
      dpoAccuracy: last.accuracy ?? Number.NaN,
      eval: evaluationMetrics(evalSamples, baseline),
      seconds: {
        generate: (tGen - clock) / 1000,
        judge: (tJudge - tGen) / 1000,
        train: (tTrain - tJudge) / 1000,
        evaluate: (Date.now() - tTrain) / 1000,
      },
    };
    reports.push(report);
    input.onIteration?.(report);
  }
  return { initial: evaluationMetrics(baseline, baseline), iterations: reports, policies };
}

export interface OfflineInput extends LoopInput {
  /**
   * Where the pairs come from: `annotators` uses the given labelled pairs (variant c); `rm` samples n
   * responses per prompt from pi_0 once and pairs them under the reward model (variant o). Either way the
   * pair count equals iterations x promptsPerIteration, trained in one DPO run with no regeneration.
   * Its random streams are iteration 1's (sampling seed + 1, pairing seed * 31 + 1, DPO seed + 1), as in the
   * platform's offline run, which is a one-iteration RLHFRun: both paths give the same figures.
   */
  source: 'annotators' | 'rm';
  annotatorPairs?: ReadonlyArray<{ prompt: string; chosen: string; rejected: string }>;
}

export async function runOfflineDpo(input: OfflineInput): Promise<LoopResult> {
  const cfg = input.config;
  const pi0 = input.policy;
  const tok = pi0.tokenizer;
  const count = cfg.iterations * cfg.promptsPerIteration;
  const clock = Date.now();
  const baseline = await evaluate(pi0, pi0, input.rewardModel, input.evalPrompts, cfg, input.oracle);
  const pairs: PairExample[] = [];
  const row = (prompt: number[], ids: number[]) => ({
    ids: [...prompt, ...ids],
    targets: [...prompt.map(() => false), ...ids.map(() => true)],
  });
  if (input.source === 'annotators') {
    for (const p of (input.annotatorPairs ?? []).slice(0, count)) {
      const prompt = [...textPromptIds(tok, p.prompt)];
      pairs.push({
        chosen: row(prompt, [...tok.encode(p.chosen), tok.eosId]),
        rejected: row(prompt, [...tok.encode(p.rejected), tok.eosId]),
      });
    }
  } else {
    const order = new Rng(cfg.seed).shuffle(input.prompts.map((_, i) => i));
    const prompts = order.slice(0, count).map((i) => input.prompts[i] as string);
    const gens = await sample(pi0, prompts, cfg.samplesPerPrompt, cfg, cfg.seed + 1);
    const scores = (await rewardScores(input.rewardModel, gens, cfg.lengthPenalty)).penalized;
    const rng = new Rng(cfg.seed * 31 + 1);
    gens.forEach((g, i) => {
      const pair = buildPair(
        { responses: g.response_ids, scores: scores[i] as number[], key: (ids) => ids.join(',') },
        cfg.pairs,
        rng,
      );
      if (pair) {
        const prompt = [...textPromptIds(tok, g.prompt)];
        pairs.push({ chosen: row(prompt, pair.chosen), rejected: row(prompt, pair.rejected) });
      }
    });
  }
  const tJudge = Date.now();
  const trained = await trainModel({
    config: pi0.config,
    weights: pi0.weights,
    padId: tok.padId,
    examples: pairs,
    options: { ...cfg.dpo, objective: 'dpo', seed: cfg.seed + 1 },
    reference: pi0.weights,
  });
  const tTrain = Date.now();
  const policy = withWeights(pi0, trained.weights);
  const evalSamples = await evaluate(policy, pi0, input.rewardModel, input.evalPrompts, cfg, input.oracle);
  const last = meanOfLastSteps(trained.history.map((h) => h.metrics));
  const report: IterationReport = {
    iteration: 1,
    pairs: pairs.length,
    meanJudgeScore: Number.NaN,
    dpoLoss: last.dpo_loss ?? Number.NaN,
    dpoAccuracy: last.accuracy ?? Number.NaN,
    eval: evaluationMetrics(evalSamples, baseline),
    seconds: {
      generate: 0,
      judge: (tJudge - clock) / 1000,
      train: (tTrain - tJudge) / 1000,
      evaluate: (Date.now() - tTrain) / 1000,
    },
  };
  input.onIteration?.(report);
  return {
    initial: evaluationMetrics(baseline, baseline),
    iterations: [report],
    policies: [trained.weights],
  };
}

/**
 * The typed inputs and result of every stage of the table, keyed by stage name: `StageResults['train']` is
 * what the train stage records in KV and what later stages read (`results.train.model` is a model URI).
 * A result is plain JSON (it is the stage record's `result`); URIs name the artifacts the stage stored.
 */
import type { SetupSpec, TrainingSection } from '@rlhf/run-spec';
import type { PolicyMetrics } from './policy-metrics.js';
import type { PlanRecord } from './records.js';

/** A chosen/rejected pair kept as an example for the report. */
export interface PairSample {
  prompt: string;
  chosen: string;
  rejected: string;
  chosenScore: number;
  rejectedScore: number;
}

/** A prompt dataset (JSONL) and the spec field it came from, for errors that name the field. */
export interface PromptSource {
  uri: string;
  field: string;
  /** Only the dataset's first this-many prompts. */
  first?: number;
}

export interface DataInputs {
  setup: SetupSpec;
}
export interface DataResult {
  /** Synthesized file name (corpus.txt, sft.jsonl, preferences.jsonl, ...) -> its URI. */
  files: Record<string, string>;
  labelBayesRate: number | null;
}

export interface InitInputs {
  /** Text corpus the tokenizer is trained on. */
  corpus: string;
  model: SetupSpec['model'];
  seed: number;
  output: string;
}
export interface ModelResult {
  model: string;
}

/** One training shard of a model service. */
export interface TrainingInputs {
  base: string;
  dataset: string;
  evalDataset?: string;
  output: string;
  settings: TrainingSection;
  seed: number;
}
export interface SftResult extends ModelResult {
  loss: number | null;
}
/** A trained judge (reward or preference model) and its accuracy on held-out labelled pairs. */
export interface JudgeModelResult extends ModelResult {
  accuracy: number | null;
}

export interface LengthFitInputs {
  policy: string;
  /** True when the policy is the spec's (not trained by setup): it is checked before anything reads it. */
  policyFromSpec: boolean;
  judgeType: 'reward' | 'preference' | 'gold';
  rewardModel?: string;
  rewardModelFromSpec: boolean;
  prompts: PromptSource;
  task?: string;
  seed: number;
}
export interface LengthFitResult {
  /** Length penalty per character. */
  lambda: number;
  /** The regression (lambda, r2, samples, ...). */
  fit: Record<string, unknown>;
}

export interface PlanInputs {
  policy?: string;
  policyFromSpec: boolean;
  judgeModel?: string;
  judgeModelFromSpec: boolean;
  prompts?: PromptSource;
  evalPrompts?: PromptSource;
  /** Offline DPO: labelled pairs (spec.pairs.dataset) instead of generating and judging. */
  offlinePairs?: string;
  /** The model whose score is the validation (proxy) reward: a reward-model judge's. */
  proxyModel?: string;
  lengthPenalty: number;
  task?: string;
}
/** What every iteration works from, resolved and checked once (the plan record plus the judge's model). */
export interface PlanResult extends PlanRecord {
  judgeModel?: string;
  task?: string;
  offlinePairs?: string;
}

export interface EvaluateInputs {
  policy: string;
  /** pi_0: the reference of the KL and the win rate. */
  baseline: string;
  prompts: PromptSource;
  rewardModel?: string;
  task?: string;
  lengthPenalty: number;
  /** pi_0's evaluation shards; absent when this is pi_0's evaluation. */
  baselineOutputs?: string[];
  /** The iteration's training, recorded with its metrics. */
  trained?: { pairs: number; dpoLoss: number | null; dpoAccuracy: number | null };
}
export interface EvaluateResult {
  /** Evaluation shards (JSONL, one sample per held-out prompt). */
  outputs: string[];
  metrics: PolicyMetrics;
}

export interface GenerateInputs {
  policy: string;
  prompts: PromptSource;
  perIteration: number;
  /** Seeds the choice of the iteration's prompts. */
  selectionSeed: number;
  samplesPerPrompt: number;
  seed: number;
}
export interface GenerateResult {
  /** Generation shards (JSONL). */
  outputs: string[];
  prompts: number;
}

export interface JudgeInputs {
  shards: string[];
  type: 'reward' | 'preference' | 'gold';
  model?: string;
  lengthPenalty: number;
  task?: string;
}
export interface JudgeResult {
  /** Judged shards (JSONL): the generation rows with `rewards`. */
  outputs: string[];
}

export interface PairInputs {
  /** Judged shards; absent with offline pairs. */
  judged?: string[];
  offlinePairs?: string;
  perIteration: number;
  strategy: 'maxMin' | 'maxRandom' | 'random';
  seed: number;
  output: string;
}
export interface PairResult {
  pairs: number;
  meanScore: number;
  samples: PairSample[];
}

export interface TrainInputs {
  base: string;
  reference: string;
  dataset: string;
  /** Pairs in the dataset; with none the policy stays as it is. */
  pairs: number;
  output: string;
  epochs: number;
  learningRate: number;
  batchSize: number;
  seed: number;
}
export interface TrainResult extends ModelResult {
  /** The DPO term of the loss (without the NLL term), mean of the last steps. */
  loss: number | null;
  accuracy: number | null;
}

/** Every stage's inputs and result, by stage name (the names of the stage table). */
export interface StageIO {
  data: { inputs: DataInputs; result: DataResult };
  init: { inputs: InitInputs; result: ModelResult };
  sft: { inputs: TrainingInputs; result: SftResult };
  'reward-model': { inputs: TrainingInputs; result: JudgeModelResult };
  'preference-model': { inputs: TrainingInputs; result: JudgeModelResult };
  'length-fit': { inputs: LengthFitInputs; result: LengthFitResult };
  plan: { inputs: PlanInputs; result: PlanResult };
  baseline: { inputs: EvaluateInputs; result: EvaluateResult };
  generate: { inputs: GenerateInputs; result: GenerateResult };
  judge: { inputs: JudgeInputs; result: JudgeResult };
  pair: { inputs: PairInputs; result: PairResult };
  train: { inputs: TrainInputs; result: TrainResult };
  evaluate: { inputs: EvaluateInputs; result: EvaluateResult };
}

export type ResultsOf<IO> = { [N in keyof IO]: IO[N] extends { result: infer R } ? R : never };
export type InputsOf<IO> = { [N in keyof IO]: IO[N] extends { inputs: infer I } ? I : never };

export type StageName = keyof StageIO;
export type StageResults = ResultsOf<StageIO>;
export type StageInputs = InputsOf<StageIO>;

/**
 * What a training job needs, checked, for every service that trains (DPO and SFT in the dpo-trainer,
 * Bradley-Terry reward models, pairwise preference models): from a gRPC request or from a training shard
 * (TrainShardParams). Every field error is INVALID_ARGUMENT naming the field where the caller wrote it
 * (`hyperparameters.learning_rate` in a request, `train.hyperparameters.learning_rate` in a shard), so the
 * same plan serves both edges.
 */
import type { TrainObjective, TrainOptions } from '@rlhf/ml-engine';
import { invalidArgument, parseArtifactUri, parseWritableUri } from '@rlhf/platform';
import {
  DatasetFormat,
  type DatasetRef,
  type ModelRef,
  Stage,
  type StageWork,
  TrainingObjective,
} from '@rlhf/proto';
import { type TrainLimits, trainOptionsFrom } from './train-options.js';
import { checkModelUri, checkText } from './validate.js';

export interface PlannedModel {
  ref: ModelRef;
  /** Where the ModelRef sits in the request, e.g. `policy` or `train.base_model`. */
  field: string;
}

export interface PlannedArtifact {
  uri: string;
  /** Where the URI sits in the request, e.g. `dataset.uri` or `input_uri`. */
  field: string;
}

export interface TrainingPlan {
  objective: TrainObjective;
  /** The model training starts from (the policy for DPO and SFT). */
  base: PlannedModel;
  /** DPO only; null: the base model itself is the reference. */
  reference: PlannedModel | null;
  dataset: PlannedArtifact;
  /** Held-out pairs (reward and preference models); null: none. */
  eval: PlannedArtifact | null;
  output: PlannedArtifact;
  options: TrainOptions;
  /** Where the hyperparameters sit in the request (`hyperparameters`, `train.hyperparameters`). */
  hyperparametersField?: string;
}

/** The wire's TrainingObjective of an engine objective. */
export const wireObjectiveOf: Record<TrainObjective, TrainingObjective> = {
  sft: TrainingObjective.TRAINING_OBJECTIVE_SFT,
  dpo: TrainingObjective.TRAINING_OBJECTIVE_DPO,
  rm: TrainingObjective.TRAINING_OBJECTIVE_REWARD_MODEL,
  pm: TrainingObjective.TRAINING_OBJECTIVE_PREFERENCE_MODEL,
};

/** The training stage of an engine objective (labels, logs). */
export const stageOfObjective: Record<TrainObjective, Stage> = {
  sft: Stage.STAGE_SFT,
  dpo: Stage.STAGE_TRAIN,
  rm: Stage.STAGE_REWARD_MODEL,
  pm: Stage.STAGE_PREFERENCE_MODEL,
};

/** How errors and logs name each objective. */
export const objectiveNames: Record<TrainObjective, string> = {
  sft: 'SFT',
  dpo: 'DPO',
  rm: 'reward-model',
  pm: 'preference-model',
};

export function checkPlannedModel(ref: ModelRef | undefined, field: string): PlannedModel {
  const uri = checkModelUri(ref, field);
  const loc = parseArtifactUri(uri, `${field}.uri`);
  const digest = ref?.digest ?? '';
  if (digest !== '' && loc.scheme === 'file')
    throw invalidArgument(
      `${field}.digest`,
      'only nats-obj:// models have a digest to pin',
      'leave it empty',
    );
  checkText(ref?.revision ?? '', `${field}.revision`, { allowEmpty: true, maxChars: 256 });
  return { ref: { uri, revision: ref?.revision ?? '', digest }, field };
}

/** A required artifact URI: present, valid UTF-8, of a known scheme. */
export function checkArtifactUri(uri: string, field: string, what: string): string {
  if (uri === '')
    throw invalidArgument(
      field,
      'is required',
      `pass the ${what} as nats-obj://<bucket>/<key> or file:///path`,
    );
  checkText(uri, field);
  parseArtifactUri(uri, field);
  return uri;
}

/** Job labels: keys and values valid UTF-8 and of a sane size. */
export function checkJobLabels(labels: Record<string, string>, field = 'labels'): void {
  for (const [k, v] of Object.entries(labels)) {
    checkText(k, field, { maxChars: 253 });
    checkText(v, `${field}[${k}]`, { allowEmpty: true, maxChars: 1024 });
  }
}

/** A DatasetRef's format must be unspecified or `want`. */
export function checkDatasetFormat(
  ref: DatasetRef,
  want: DatasetFormat,
  field: string,
  objective: TrainObjective,
): void {
  if (ref.format !== DatasetFormat.DATASET_FORMAT_UNSPECIFIED && ref.format !== want) {
    throw invalidArgument(
      field,
      `${objectiveNames[objective]} training reads ${DatasetFormat[want]}, not ${DatasetFormat[ref.format] ?? ref.format}`,
      'pass the matching dataset, or leave the format unspecified',
    );
  }
}

/** The data format each objective trains on. */
export function datasetFormatOf(objective: TrainObjective): DatasetFormat {
  return objective === 'sft' ? DatasetFormat.DATASET_FORMAT_SFT : DatasetFormat.DATASET_FORMAT_PAIRS;
}

/** Whether the objective reports held-out figures for an eval dataset (reward and preference models). */
export function evaluates(objective: TrainObjective): boolean {
  return objective === 'rm' || objective === 'pm';
}

/** Held-out pairs at `field` (a DatasetRef), for the objectives that evaluate them; null when unset. */
export function checkEval(
  objective: TrainObjective,
  ref: DatasetRef | undefined,
  field: string,
): PlannedArtifact | null {
  if (!ref || ref.uri === '') return null;
  if (!evaluates(objective))
    throw invalidArgument(
      `${field}.uri`,
      `held-out evaluation is not supported for ${objectiveNames[objective]} training yet`,
      'leave it unset',
    );
  checkDatasetFormat(ref, DatasetFormat.DATASET_FORMAT_PAIRS, `${field}.format`, objective);
  return { uri: checkArtifactUri(ref.uri, `${field}.uri`, 'held-out pairs'), field: `${field}.uri` };
}

/** Adds the output to a plan: required, and not one of the input models (which it would overwrite). */
export function withOutput(plan: Omit<TrainingPlan, 'output'>, uri: string, field: string): TrainingPlan {
  checkArtifactUri(uri, field, 'output model directory');
  // The Hub is a source only: refused here, before any training, rather than when the model is written.
  parseWritableUri(uri, field);
  const norm = (u: string) => u.replace(/\/+$/, '');
  for (const m of [plan.base, plan.reference]) {
    if (m && norm(m.ref.uri) === norm(uri))
      throw invalidArgument(field, `must differ from ${m.field}.uri`, 'write the new model to a new URI');
  }
  for (const d of [plan.dataset, plan.eval]) {
    if (d && norm(d.uri) === norm(uri))
      throw invalidArgument(field, `must differ from ${d.field}`, 'write the new model to a new URI');
  }
  return { ...plan, output: { uri, field } };
}

const stageNames: Partial<Record<Stage, string>> = {
  [Stage.STAGE_TRAIN]: 'TRAIN',
  [Stage.STAGE_SFT]: 'SFT',
  [Stage.STAGE_REWARD_MODEL]: 'REWARD_MODEL',
  [Stage.STAGE_PREFERENCE_MODEL]: 'PREFERENCE_MODEL',
};

/**
 * The plan of a training shard. `stages` maps the stages this worker trains to their objective; a shard
 * of another stage, a params case other than `train`, or an objective that disagrees with the stage is
 * INVALID_ARGUMENT naming the field.
 */
export function planTrainShard(
  work: StageWork,
  stages: Partial<Record<Stage, TrainObjective>>,
  limits?: TrainLimits,
): TrainingPlan {
  const stage = work.key?.stage ?? Stage.STAGE_UNSPECIFIED;
  const objective = stages[stage];
  if (!objective) {
    const served = Object.keys(stages)
      .map((s) => stageNames[Number(s) as Stage] ?? s)
      .join(', ');
    throw invalidArgument('key.stage', `this worker serves ${served} shards only`);
  }
  const name = stageNames[stage] ?? String(stage);
  if (work.params?.$case !== 'train') throw invalidArgument('params', `a ${name} shard needs train params`);
  const p = work.params.value;
  const want = wireObjectiveOf[objective];
  if (p.objective !== TrainingObjective.TRAINING_OBJECTIVE_UNSPECIFIED && p.objective !== want)
    throw invalidArgument(
      'train.objective',
      `${TrainingObjective[p.objective] ?? p.objective} does not match the stage`,
      `use ${TrainingObjective[want]} or leave it unspecified`,
    );
  const base = checkPlannedModel(p.baseModel, 'train.base_model');
  const reference =
    objective === 'dpo' && p.reference && p.reference.uri !== ''
      ? checkPlannedModel(p.reference, 'train.reference')
      : null;
  const dataset = { uri: checkArtifactUri(work.inputUri, 'input_uri', 'training data'), field: 'input_uri' };
  const evalSet = checkEval(objective, p.evalDataset, 'train.eval_dataset');
  const options = trainOptionsFrom(objective, p.hyperparameters, p.dpo, 'train.', limits);
  return withOutput(
    {
      objective,
      base,
      reference,
      dataset,
      eval: evalSet,
      options,
      hyperparametersField: 'train.hyperparameters',
    },
    work.outputUri,
    'output_uri',
  );
}

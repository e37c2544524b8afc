/**
 * What a DPO or SFT job needs, checked: from a StartTrainingRequest (gRPC) or a TRAIN / SFT shard (NATS).
 * Every field error is INVALID_ARGUMENT naming the field where the caller wrote it (`dpo.beta` in a request,
 * `train.dpo.beta` in a shard), so the same plan serves both edges.
 */
import type { TrainOptions } from '@rlhf/ml-engine';
import { invalidArgument, parseArtifactUri } from '@rlhf/platform';
import {
  DatasetFormat,
  type DatasetRef,
  type ModelRef,
  Stage,
  type StageWork,
  type StartTrainingRequest,
  TrainingObjective,
} from '@rlhf/proto';
import { checkModelUri, checkText, type TrainLimits, trainOptionsFrom } from '@rlhf/service-kit';

export interface PlannedModel {
  ref: ModelRef;
  /** Where the ModelRef sits in the request, e.g. `policy` or `train.base_model`. */
  field: string;
}

export interface TrainingPlan {
  objective: 'dpo' | 'sft';
  policy: PlannedModel;
  /** DPO only; null: the policy itself is the reference. */
  reference: PlannedModel | null;
  dataset: { uri: string; field: string };
  output: { uri: string; field: string };
  options: TrainOptions;
}

function checkModel(ref: ModelRef | undefined, field: string): PlannedModel {
  const uri = checkModelUri(ref, field);
  const loc = parseArtifactUri(uri, `${field}.uri`);
  const digest = ref?.digest ?? '';
  if (digest !== '' && loc.scheme === 'file')
    throw invalidArgument(
      `${field}.digest`,
      'only nats-obj:// models have a digest to pin',
      'leave it empty',
    );
  return { ref: { uri, revision: ref?.revision ?? '', digest }, field };
}

function checkUri(uri: string, field: string, what: string): string {
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

function checkOutput(plan: Omit<TrainingPlan, 'output'>, uri: string, field: string): TrainingPlan {
  checkUri(uri, field, 'output model directory');
  for (const m of [plan.policy, plan.reference]) {
    if (m && m.ref.uri.replace(/\/+$/, '') === uri.replace(/\/+$/, ''))
      throw invalidArgument(field, `must differ from ${m.field}.uri`, 'write the new model to a new URI');
  }
  return { ...plan, output: { uri, field } };
}

function checkFormat(objective: 'dpo' | 'sft', ref: DatasetRef, field: string): void {
  const want = objective === 'dpo' ? DatasetFormat.DATASET_FORMAT_PAIRS : DatasetFormat.DATASET_FORMAT_SFT;
  if (ref.format !== DatasetFormat.DATASET_FORMAT_UNSPECIFIED && ref.format !== want) {
    throw invalidArgument(
      field,
      `${objective.toUpperCase()} reads ${DatasetFormat[want]}, not ${DatasetFormat[ref.format] ?? ref.format}`,
      'pass the matching dataset, or leave the format unspecified',
    );
  }
}

function noEvalDataset(ref: DatasetRef | undefined, field: string): void {
  if (ref && ref.uri !== '')
    throw invalidArgument(
      field,
      'held-out evaluation is not supported by this trainer yet',
      'leave it unset',
    );
}

export function planFromRequest(req: StartTrainingRequest, limits?: TrainLimits): TrainingPlan {
  let objective: 'dpo' | 'sft';
  if (
    req.objective === TrainingObjective.TRAINING_OBJECTIVE_UNSPECIFIED ||
    req.objective === TrainingObjective.TRAINING_OBJECTIVE_DPO
  )
    objective = 'dpo';
  else if (req.objective === TrainingObjective.TRAINING_OBJECTIVE_SFT) objective = 'sft';
  else
    throw invalidArgument(
      'objective',
      `${TrainingObjective[req.objective] ?? req.objective} is not trained here`,
      'use DPO or SFT; reward and preference models train through RewardModelService and PreferenceModelService',
    );
  for (const [k, v] of Object.entries(req.labels)) {
    checkText(k, 'labels', { maxChars: 253 });
    checkText(v, `labels[${k}]`, { allowEmpty: true, maxChars: 1024 });
  }
  const policy = checkModel(req.policy, 'policy');
  const reference =
    objective === 'dpo' && req.reference && req.reference.uri !== ''
      ? checkModel(req.reference, 'reference')
      : null;
  if (!req.dataset)
    throw invalidArgument('dataset.uri', 'is required', 'pass the training data as a JSONL URI');
  const dataset = { uri: checkUri(req.dataset.uri, 'dataset.uri', 'training data'), field: 'dataset.uri' };
  checkFormat(objective, req.dataset, 'dataset.format');
  noEvalDataset(req.evalDataset, 'eval_dataset.uri');
  const options = trainOptionsFrom(objective, req.hyperparameters, req.dpo, '', limits);
  return checkOutput({ objective, policy, reference, dataset, options }, req.outputUri, 'output_uri');
}

/** The stage a shard trains for, or null when this service does not train it. */
export function shardObjective(stage: Stage | undefined): 'dpo' | 'sft' | null {
  if (stage === Stage.STAGE_TRAIN) return 'dpo';
  if (stage === Stage.STAGE_SFT) return 'sft';
  return null;
}

export function planFromShard(work: StageWork, limits?: TrainLimits): TrainingPlan {
  const objective = shardObjective(work.key?.stage);
  if (!objective) throw invalidArgument('key.stage', 'the dpo-trainer serves TRAIN and SFT shards only');
  if (work.params?.$case !== 'train')
    throw invalidArgument('params', `a ${objective === 'dpo' ? 'TRAIN' : 'SFT'} shard needs train params`);
  const p = work.params.value;
  const want =
    objective === 'dpo' ? TrainingObjective.TRAINING_OBJECTIVE_DPO : TrainingObjective.TRAINING_OBJECTIVE_SFT;
  if (p.objective !== TrainingObjective.TRAINING_OBJECTIVE_UNSPECIFIED && p.objective !== want)
    throw invalidArgument(
      'train.objective',
      `${TrainingObjective[p.objective] ?? p.objective} does not match the stage`,
      `use ${TrainingObjective[want]} or leave it unspecified`,
    );
  const policy = checkModel(p.baseModel, 'train.base_model');
  const reference =
    objective === 'dpo' && p.reference && p.reference.uri !== ''
      ? checkModel(p.reference, 'train.reference')
      : null;
  const dataset = { uri: checkUri(work.inputUri, 'input_uri', 'training data'), field: 'input_uri' };
  noEvalDataset(p.evalDataset, 'train.eval_dataset.uri');
  const options = trainOptionsFrom(objective, p.hyperparameters, p.dpo, 'train.', limits);
  return checkOutput({ objective, policy, reference, dataset, options }, work.outputUri, 'output_uri');
}

/**
 * What a DPO or SFT job needs, checked: from a StartTrainingRequest (gRPC) or a TRAIN / SFT shard (NATS).
 * Every field error is INVALID_ARGUMENT naming the field where the caller wrote it (`dpo.beta` in a request,
 * `train.dpo.beta` in a shard); the checks themselves are service-kit's, shared with the reward and
 * preference trainers.
 */
import { invalidArgument } from '@rlhf/platform';
import { Stage, type StageWork, type StartTrainingRequest, TrainingObjective } from '@rlhf/proto';
import {
  checkArtifactUri,
  checkDatasetFormat,
  checkJobLabels,
  checkPlannedModel,
  datasetFormatOf,
  planTrainShard,
  type TrainingPlan,
  type TrainLimits,
  trainOptionsFrom,
  withOutput,
} from '@rlhf/service-kit';

export type { TrainingPlan } from '@rlhf/service-kit';

/** The stages the dpo-trainer's workers train, and their objectives. */
export const trainerStages = { [Stage.STAGE_TRAIN]: 'dpo', [Stage.STAGE_SFT]: 'sft' } as const;

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
  checkJobLabels(req.labels);
  const base = checkPlannedModel(req.policy, 'policy');
  const reference =
    objective === 'dpo' && req.reference && req.reference.uri !== ''
      ? checkPlannedModel(req.reference, 'reference')
      : null;
  if (!req.dataset)
    throw invalidArgument('dataset.uri', 'is required', 'pass the training data as a JSONL URI');
  const dataset = {
    uri: checkArtifactUri(req.dataset.uri, 'dataset.uri', 'training data'),
    field: 'dataset.uri',
  };
  checkDatasetFormat(req.dataset, datasetFormatOf(objective), 'dataset.format', objective);
  if (req.evalDataset && req.evalDataset.uri !== '')
    throw invalidArgument(
      'eval_dataset.uri',
      'held-out evaluation is not supported by this trainer yet',
      'leave it unset',
    );
  const options = trainOptionsFrom(objective, req.hyperparameters, req.dpo, '', limits);
  return withOutput(
    { objective, base, reference, dataset, eval: null, options },
    req.outputUri,
    'output_uri',
  );
}

export function planFromShard(work: StageWork, limits?: TrainLimits): TrainingPlan {
  return planTrainShard(work, trainerStages, limits);
}

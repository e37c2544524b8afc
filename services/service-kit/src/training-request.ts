/**
 * What a StartTrainingJob request asks for, checked, in a process that trains `objectives`: the same
 * TrainingPlan a training shard becomes (training-plan.ts), with every field error INVALID_ARGUMENT naming
 * the request's field. An objective this process does not train is FAILED_PRECONDITION naming the service
 * that trains it, so a client that reached the wrong process learns where to go.
 */
import type { TrainObjective } from '@rlhf/ml-engine';
import { invalidArgument, RlhfError } from '@rlhf/platform';
import { type StartTrainingJobRequest, TrainingObjective } from '@rlhf/proto';
import { type TrainLimits, trainOptionsFrom } from './train-options.js';
import {
  checkArtifactUri,
  checkDatasetFormat,
  checkEval,
  checkJobLabels,
  checkPlannedModel,
  datasetFormatOf,
  objectiveNames,
  type TrainingPlan,
  wireObjectiveOf,
  withOutput,
} from './training-plan.js';

/** The `rlhf serve` service that trains each objective. */
export const trainingServiceOf: Record<TrainObjective, string> = {
  sft: 'dpo-trainer',
  dpo: 'dpo-trainer',
  rm: 'reward-model',
  pm: 'preference-model',
};

/** Engine objectives in the wire enum's order (SFT, DPO, reward model, preference model). */
export const trainObjectives: readonly TrainObjective[] = ['sft', 'dpo', 'rm', 'pm'];

/** The engine objective of a wire TrainingObjective, or null for UNSPECIFIED and unknown values. */
export function engineObjectiveOf(wire: TrainingObjective): TrainObjective | null {
  return trainObjectives.find((o) => wireObjectiveOf[o] === wire) ?? null;
}

function wireName(o: TrainObjective): string {
  return TrainingObjective[wireObjectiveOf[o]].replace('TRAINING_OBJECTIVE_', '');
}

/** The objective a request asks for, if this process trains it. */
function objectiveOf(req: StartTrainingJobRequest, objectives: readonly TrainObjective[]): TrainObjective {
  const served = objectives.map(wireName).join(', ');
  const objective = engineObjectiveOf(req.objective);
  if (objective === null)
    throw invalidArgument(
      'objective',
      req.objective === TrainingObjective.TRAINING_OBJECTIVE_UNSPECIFIED
        ? 'is required'
        : `${req.objective} is not a TrainingObjective`,
      `set one this server trains: ${served}`,
    );
  if (!objectives.includes(objective)) {
    const home = trainingServiceOf[objective];
    throw new RlhfError(
      'FAILED_PRECONDITION',
      `${wireName(objective)} is not trained by this server (it trains ${served}); the ${home} service trains it`,
      {
        field: 'objective',
        fix: `send the job to a ${home} process (rlhf serve ${home}); GetTrainingCapabilities lists what a server trains`,
      },
    );
  }
  return objective;
}

export function planStartTrainingJob(
  req: StartTrainingJobRequest,
  objectives: readonly TrainObjective[],
  limits?: TrainLimits,
): TrainingPlan {
  const objective = objectiveOf(req, objectives);
  checkJobLabels(req.labels);
  const base = checkPlannedModel(req.model, 'model');
  const reference =
    objective === 'dpo' && req.reference && req.reference.uri !== ''
      ? checkPlannedModel(req.reference, 'reference')
      : null;
  if (!req.dataset || req.dataset.uri === '')
    throw invalidArgument(
      'dataset.uri',
      'is required',
      `pass the ${objectiveNames[objective]} training data as a JSONL URI`,
    );
  const dataset = {
    uri: checkArtifactUri(req.dataset.uri, 'dataset.uri', 'training data'),
    field: 'dataset.uri',
  };
  checkDatasetFormat(req.dataset, datasetFormatOf(objective), 'dataset.format', objective);
  const evalSet = checkEval(objective, req.evalDataset, 'eval_dataset');
  const options = trainOptionsFrom(
    objective,
    req.hyperparameters,
    objective === 'dpo' ? req.dpo : undefined,
    '',
    limits,
  );
  return withOutput(
    { objective, base, reference, dataset, eval: evalSet, options },
    req.outputUri,
    'output_uri',
  );
}

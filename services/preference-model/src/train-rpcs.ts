/**
 * PreferenceModelService's training rpcs over the service's JobManager (service-kit's trainingRpcs):
 * TrainPreferenceModel checks the request and its inputs and queues a pairwise-PM job (each pair shown in a
 * seeded random order, target `A` or `B`), GetPreferenceTrainingJob / WatchPreferenceTraining /
 * CancelPreferenceTrainingJob report, stream and stop jobs.
 */
import {
  type CancelPreferenceTrainingJobRequest,
  type CancelPreferenceTrainingJobResponse,
  type GetPreferenceTrainingJobRequest,
  type GetPreferenceTrainingJobResponse,
  type TrainPreferenceModelRequest,
  TrainPreferenceModelRequest as TrainPreferenceModelRequestCodec,
  type TrainPreferenceModelResponse,
  type WatchPreferenceTrainingRequest,
  type WatchPreferenceTrainingResponse,
} from '@rlhf/proto';
import {
  type HandlerDeps,
  planPairModelRequest,
  serverStream,
  type TrainingRuntime,
  type TrainLimits,
  trainingRpcs,
  unary,
} from '@rlhf/service-kit';

export function preferenceTrainingImplementation(
  d: HandlerDeps & { rt: TrainingRuntime; limits?: TrainLimits },
) {
  const rpcs = trainingRpcs<TrainPreferenceModelRequest>(d.rt, {
    startMethod: 'TrainPreferenceModel',
    plan: (req) => planPairModelRequest('pm', req, d.limits),
    fingerprintOf: (req) => TrainPreferenceModelRequestCodec.toJSON(req),
  });
  return {
    trainPreferenceModel: unary<TrainPreferenceModelRequest, TrainPreferenceModelResponse>(
      'TrainPreferenceModel',
      d,
      rpcs.start,
    ),
    getPreferenceTrainingJob: unary<GetPreferenceTrainingJobRequest, GetPreferenceTrainingJobResponse>(
      'GetPreferenceTrainingJob',
      d,
      rpcs.get,
    ),
    watchPreferenceTraining: serverStream<WatchPreferenceTrainingRequest, WatchPreferenceTrainingResponse>(
      'WatchPreferenceTraining',
      d,
      rpcs.watch,
    ),
    cancelPreferenceTrainingJob: unary<
      CancelPreferenceTrainingJobRequest,
      CancelPreferenceTrainingJobResponse
    >('CancelPreferenceTrainingJob', d, rpcs.cancel),
  };
}

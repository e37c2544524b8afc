/**
 * RewardModelService's training rpcs over the service's JobManager (service-kit's trainingRpcs):
 * TrainRewardModel checks the request and its inputs and queues a Bradley-Terry job (a policy given as the
 * base gets a fresh scalar head), GetRewardTrainingJob / WatchRewardTraining / CancelRewardTrainingJob
 * report, stream and stop jobs.
 */
import {
  type CancelRewardTrainingJobRequest,
  type CancelRewardTrainingJobResponse,
  type GetRewardTrainingJobRequest,
  type GetRewardTrainingJobResponse,
  type TrainRewardModelRequest,
  TrainRewardModelRequest as TrainRewardModelRequestCodec,
  type TrainRewardModelResponse,
  type WatchRewardTrainingRequest,
  type WatchRewardTrainingResponse,
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

export function rewardTrainingImplementation(d: HandlerDeps & { rt: TrainingRuntime; limits?: TrainLimits }) {
  const rpcs = trainingRpcs<TrainRewardModelRequest>(d.rt, {
    startMethod: 'TrainRewardModel',
    plan: (req) => planPairModelRequest('rm', req, d.limits),
    fingerprintOf: (req) => TrainRewardModelRequestCodec.toJSON(req),
  });
  return {
    trainRewardModel: unary<TrainRewardModelRequest, TrainRewardModelResponse>(
      'TrainRewardModel',
      d,
      rpcs.start,
    ),
    getRewardTrainingJob: unary<GetRewardTrainingJobRequest, GetRewardTrainingJobResponse>(
      'GetRewardTrainingJob',
      d,
      rpcs.get,
    ),
    watchRewardTraining: serverStream<WatchRewardTrainingRequest, WatchRewardTrainingResponse>(
      'WatchRewardTraining',
      d,
      rpcs.watch,
    ),
    cancelRewardTrainingJob: unary<CancelRewardTrainingJobRequest, CancelRewardTrainingJobResponse>(
      'CancelRewardTrainingJob',
      d,
      rpcs.cancel,
    ),
  };
}

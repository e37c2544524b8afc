/**
 * The DpoTrainerService rpcs over the process's JobManager (service-kit's trainingRpcs): StartTraining
 * checks the request and its inputs and queues a job (a retried start with the same job_id returns the job
 * it started), WatchTraining streams the job's events until it ends, GetTrainingJob and CancelTrainingJob
 * report and stop jobs.
 */
import {
  type CancelTrainingJobRequest,
  type CancelTrainingJobResponse,
  type GetTrainingJobRequest,
  type GetTrainingJobResponse,
  type StartTrainingRequest,
  StartTrainingRequest as StartTrainingRequestCodec,
  type StartTrainingResponse,
  type WatchTrainingRequest,
  type WatchTrainingResponse,
} from '@rlhf/proto';
import {
  type HandlerDeps,
  serverStream,
  type TrainingRuntime,
  type TrainLimits,
  trainingRpcs,
  unary,
} from '@rlhf/service-kit';
import { planFromRequest } from './training-plan.js';

export function trainerImplementation(d: HandlerDeps & { rt: TrainingRuntime; limits?: TrainLimits }) {
  const rpcs = trainingRpcs<StartTrainingRequest>(d.rt, {
    startMethod: 'StartTraining',
    plan: (req) => planFromRequest(req, d.limits),
    fingerprintOf: (req) => StartTrainingRequestCodec.toJSON(req),
  });
  return {
    startTraining: unary<StartTrainingRequest, StartTrainingResponse>('StartTraining', d, rpcs.start),
    watchTraining: serverStream<WatchTrainingRequest, WatchTrainingResponse>('WatchTraining', d, rpcs.watch),
    getTrainingJob: unary<GetTrainingJobRequest, GetTrainingJobResponse>('GetTrainingJob', d, rpcs.get),
    cancelTrainingJob: unary<CancelTrainingJobRequest, CancelTrainingJobResponse>(
      'CancelTrainingJob',
      d,
      rpcs.cancel,
    ),
  };
}

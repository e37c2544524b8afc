/**
 * The DpoTrainerService rpcs over the process's JobManager: StartTraining checks the request and its inputs
 * and queues a job (a retried start with the same job_id returns the job it started), WatchTraining streams
 * the job's events until it ends, GetTrainingJob and CancelTrainingJob report and stop jobs.
 */
import { invalidArgument } from '@rlhf/platform';
import {
  type CancelTrainingJobRequest,
  type CancelTrainingJobResponse,
  type GetTrainingJobRequest,
  type GetTrainingJobResponse,
  type StartTrainingRequest,
  StartTrainingRequest as StartTrainingRequestCodec,
  type StartTrainingResponse,
  TrainingObjective,
  type WatchTrainingRequest,
  type WatchTrainingResponse,
} from '@rlhf/proto';
import {
  type HandlerDeps,
  type JobManager,
  requestFingerprint,
  serverStream,
  type TrainLimits,
  unary,
} from '@rlhf/service-kit';
import { checkInputs } from './input-checks.js';
import { runTrainingJob, type TrainJobDeps } from './train-job.js';
import { planFromRequest } from './training-plan.js';

export interface TrainerRpcDeps extends HandlerDeps {
  jobs: JobManager;
  train: TrainJobDeps;
  limits?: TrainLimits;
}

function jobIdOf(req: { jobId: string }): string {
  if (req.jobId === '') throw invalidArgument('job_id', 'is required', 'pass the id StartTraining returned');
  return req.jobId;
}

export function trainerImplementation(d: TrainerRpcDeps) {
  return {
    startTraining: unary<StartTrainingRequest, StartTrainingResponse>('StartTraining', d, async (req) => {
      const plan = planFromRequest(req, d.limits);
      const fingerprint = requestFingerprint(StartTrainingRequestCodec.toJSON({ ...req, jobId: '' }));
      const existing = d.jobs.lookup(req.jobId, fingerprint);
      if (existing) return { job: existing };
      await checkInputs(d.train.store, plan);
      const job = d.jobs.submit({
        id: req.jobId,
        objective:
          plan.objective === 'dpo'
            ? TrainingObjective.TRAINING_OBJECTIVE_DPO
            : TrainingObjective.TRAINING_OBJECTIVE_SFT,
        labels: req.labels,
        fingerprint,
        run: (signal, report) => runTrainingJob(plan, d.train, signal, report),
      });
      return { job };
    }),
    watchTraining: serverStream<WatchTrainingRequest, WatchTrainingResponse>(
      'WatchTraining',
      d,
      async (req, emit, ctx) => {
        for await (const event of d.jobs.watch(jobIdOf(req), ctx.signal)) emit({ event });
      },
    ),
    getTrainingJob: unary<GetTrainingJobRequest, GetTrainingJobResponse>(
      'GetTrainingJob',
      d,
      async (req) => ({
        job: d.jobs.get(jobIdOf(req)),
      }),
    ),
    cancelTrainingJob: unary<CancelTrainingJobRequest, CancelTrainingJobResponse>(
      'CancelTrainingJob',
      d,
      async (req) => ({ job: d.jobs.cancel(jobIdOf(req), req.reason) }),
    ),
  };
}

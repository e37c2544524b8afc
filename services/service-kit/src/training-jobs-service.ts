/**
 * TrainingJobsService, one implementation for every process that trains: the process names the
 * objectives it runs and gets the gRPC binding. StartTrainingJob checks the request and its inputs and
 * queues a job in the process's JobManager (a retried start with the same job_id returns the job it
 * started); Get, Watch, List and Cancel report and stop jobs; GetTrainingCapabilities tells a client what
 * the process trains and within which bounds. The training shards of the NATS stage work share the same
 * JobManager (training-service.ts), so their jobs are listed and watched here too.
 */
import type * as grpc from '@grpc/grpc-js';
import type { TrainObjective } from '@rlhf/ml-engine';
import { type GrpcServiceBinding, invalidArgument } from '@rlhf/platform';
import {
  type CancelTrainingJobRequest,
  type CancelTrainingJobResponse,
  type GetTrainingCapabilitiesRequest,
  type GetTrainingCapabilitiesResponse,
  type GetTrainingJobRequest,
  type GetTrainingJobResponse,
  JobState,
  type ListTrainingJobsRequest,
  type ListTrainingJobsResponse,
  type StartTrainingJobRequest,
  StartTrainingJobRequest as StartTrainingJobRequestCodec,
  type StartTrainingJobResponse,
  TrainingJobsServiceService,
  TrainingObjective,
  type WatchTrainingJobRequest,
  type WatchTrainingJobResponse,
} from '@rlhf/proto';
import { type HandlerDeps, serverStream, unary } from './grpc-handlers.js';
import { requestFingerprint } from './job-manager.js';
import { decodeJobPageToken, encodeJobPageToken, jobPageSize, maxJobPageSize } from './job-pages.js';
import { checkTrainingInputs } from './train-inputs.js';
import { runTrainingJob } from './train-job.js';
import { dpoLossTypesTrained } from './train-options.js';
import { wireObjectiveOf } from './training-plan.js';
import { planStartTrainingJob, trainObjectives } from './training-request.js';
import type { TrainingRuntime } from './training-service.js';
import {
  datasetRefSchema,
  jobRequestSchema,
  modelRefSchema,
  type WireSchema,
  withUtf8Checks,
} from './utf8-fields.js';

export const trainingJobsServiceName = 'rlhf.v1.TrainingJobsService';

/** The string fields of TrainingJobsService's requests (training_jobs.proto numbers), checked for UTF-8. */
export const trainingJobsUtf8Schemas: Record<string, WireSchema> = {
  getTrainingCapabilities: {},
  startTrainingJob: {
    1: { name: 'job_id' },
    3: { name: 'model', message: modelRefSchema },
    4: { name: 'reference', message: modelRefSchema },
    5: { name: 'dataset', message: datasetRefSchema },
    6: { name: 'eval_dataset', message: datasetRefSchema },
    9: { name: 'output_uri' },
    10: { name: 'labels', map: true },
  },
  getTrainingJob: jobRequestSchema,
  watchTrainingJob: jobRequestSchema,
  listTrainingJobs: { 2: { name: 'page_token' } },
  cancelTrainingJob: jobRequestSchema,
};

function jobIdOf(req: { jobId: string }): string {
  if (req.jobId === '')
    throw invalidArgument('job_id', 'is required', 'pass the id StartTrainingJob returned');
  return req.jobId;
}

/** The handlers of TrainingJobsService over `rt`, for a process that trains `objectives`. */
export function trainingJobsImplementation(
  d: HandlerDeps,
  rt: TrainingRuntime,
  objectives: readonly TrainObjective[],
) {
  const served = trainObjectives.filter((o) => objectives.includes(o));
  return {
    getTrainingCapabilities: unary<GetTrainingCapabilitiesRequest, GetTrainingCapabilitiesResponse>(
      'GetTrainingCapabilities',
      d,
      async () => ({
        objectives: served.map((o) => wireObjectiveOf[o]),
        dpoLossTypes: served.includes('dpo') ? [...dpoLossTypesTrained] : [],
        maxSteps: rt.limits.maxSteps,
        maxEpochs: rt.limits.maxEpochs,
        maxDatasetBytes: rt.limits.maxDatasetBytes,
        maxQueuedJobs: rt.jobs.maxQueued,
        maxPageSize: maxJobPageSize,
      }),
    ),
    startTrainingJob: unary<StartTrainingJobRequest, StartTrainingJobResponse>(
      'StartTrainingJob',
      d,
      async (req) => {
        const plan = planStartTrainingJob(req, served, rt.limits);
        const fingerprint = requestFingerprint(StartTrainingJobRequestCodec.toJSON({ ...req, jobId: '' }));
        const existing = rt.jobs.lookup(req.jobId, fingerprint);
        if (existing) return { job: existing };
        await checkTrainingInputs(rt.train.store, plan, rt.limits);
        const job = rt.jobs.submit({
          id: req.jobId,
          objective: wireObjectiveOf[plan.objective],
          labels: req.labels,
          fingerprint,
          run: (signal, report) => runTrainingJob(plan, rt.train, signal, report),
        });
        return { job };
      },
    ),
    getTrainingJob: unary<GetTrainingJobRequest, GetTrainingJobResponse>(
      'GetTrainingJob',
      d,
      async (req) => ({
        job: rt.jobs.get(jobIdOf(req)),
      }),
    ),
    watchTrainingJob: serverStream<WatchTrainingJobRequest, WatchTrainingJobResponse>(
      'WatchTrainingJob',
      d,
      async (req, emit, ctx) => {
        for await (const event of rt.jobs.watch(jobIdOf(req), ctx.signal)) emit({ event });
      },
    ),
    listTrainingJobs: unary<ListTrainingJobsRequest, ListTrainingJobsResponse>(
      'ListTrainingJobs',
      d,
      async (req) => {
        const filter = { objective: req.objective, state: req.state };
        const size = jobPageSize(req.pageSize);
        const after = decodeJobPageToken(req.pageToken, filter);
        const page = rt.jobs.list(
          (s) =>
            (filter.objective === TrainingObjective.TRAINING_OBJECTIVE_UNSPECIFIED ||
              s.objective === filter.objective) &&
            (filter.state === JobState.JOB_STATE_UNSPECIFIED || s.state === filter.state),
          after,
          size,
        );
        return {
          jobs: page.jobs,
          nextPageToken: page.more ? encodeJobPageToken(page.lastSeq, filter) : '',
        };
      },
    ),
    cancelTrainingJob: unary<CancelTrainingJobRequest, CancelTrainingJobResponse>(
      'CancelTrainingJob',
      d,
      async (req) => ({ job: rt.jobs.cancel(jobIdOf(req), req.reason) }),
    ),
  };
}

/** The TrainingJobsService binding of a process that trains `objectives` through `rt`. */
export function trainingJobsBinding(
  d: HandlerDeps,
  rt: TrainingRuntime,
  objectives: readonly TrainObjective[],
): GrpcServiceBinding {
  return {
    name: trainingJobsServiceName,
    // String fields are checked for invalid UTF-8 in the raw bytes (utf8-fields.ts).
    definition: withUtf8Checks(
      TrainingJobsServiceService as unknown as grpc.ServiceDefinition,
      trainingJobsUtf8Schemas,
    ),
    implementation: trainingJobsImplementation(d, rt, objectives),
  };
}

/**
 * The TrainJob status Kubeflow Trainer writes, from its Jobs (pkg/controller/trainjob_controller.go and
 * the JobSet plugin's Status, kubeflow/trainer at v1.5): `Suspended` True with reason Suspended ("TrainJob
 * is suspended") while spec.suspend is set, then False with reason Resumed ("TrainJob is resumed");
 * `Complete` and `Failed` copied from the JobSet's conditions, whose reasons and messages are JobSet's
 * (AllJobsCompleted "jobset completed successfully", FailedJobs "jobset failed due to one or more job
 * failures"); `Failed` with TrainingRuntimeNotSupported for a runtime of another kind; and jobsStatus,
 * counts of Jobs per replicated job. Conditions change as meta.SetStatusCondition changes them: the
 * transition time moves only when the status does.
 */
import type { V1Job } from '@kubernetes/client-node';
import {
  type JobStatusEntry,
  type Json,
  replicatedJobNameLabel,
  type TrainJobCondition,
} from './trainjob-types.js';

export const suspendedMessage = 'TrainJob is suspended';
export const resumedMessage = 'TrainJob is resumed';
export const completedReason = 'AllJobsCompleted';
export const completedMessage = 'jobset completed successfully';
export const failedJobsReason = 'FailedJobs';
export const failedJobsMessage = 'jobset failed due to one or more job failures';
export const runtimeNotSupportedReason = 'TrainingRuntimeNotSupported';

/** meta.SetStatusCondition: replaces the condition of that type, keeping its time unless the status changes. */
export function setCondition(
  list: readonly TrainJobCondition[],
  next: Omit<TrainJobCondition, 'lastTransitionTime'>,
  now: string,
): TrainJobCondition[] {
  const old = list.find((c) => c.type === next.type);
  const time = old && old.status === next.status ? old.lastTransitionTime : now;
  return [...list.filter((c) => c.type !== next.type), { ...next, lastTransitionTime: time }];
}

const jobCondition = (job: V1Job, type: string) =>
  job.status?.conditions?.some((c) => c.type === type && c.status === 'True') === true;

/** Per replicated job: how many of its Jobs are active, ready, succeeded, failed and suspended. */
export function jobsStatus(jobs: readonly V1Job[]): JobStatusEntry[] {
  const byName = new Map<string, JobStatusEntry>();
  for (const job of jobs) {
    const name = job.metadata?.labels?.[replicatedJobNameLabel] ?? '';
    const e = byName.get(name) ?? { name, ready: 0, succeeded: 0, failed: 0, active: 0, suspended: 0 };
    byName.set(name, e);
    if (jobCondition(job, 'Complete')) e.succeeded++;
    else if (jobCondition(job, 'Failed')) e.failed++;
    else if (job.spec?.suspend) e.suspended++;
    else if ((job.status?.active ?? 0) > 0) {
      e.active++;
      // JobSet counts a Job ready when its ready and succeeded pods reach its parallelism.
      if ((job.status?.ready ?? 0) + (job.status?.succeeded ?? 0) >= (job.spec?.parallelism ?? 1)) e.ready++;
    }
  }
  return [...byName.values()];
}

/** The status a TrainJob gets from its Jobs (all of them created). */
export function trainJobStatus(trainJob: Json, jobs: readonly V1Job[], now: string): Json {
  let conditions = ((trainJob.status?.conditions ?? []) as TrainJobCondition[]).map((c) => ({ ...c }));
  const suspended = conditions.find((c) => c.type === 'Suspended');
  if (trainJob.spec?.suspend === true)
    conditions = setCondition(
      conditions,
      { type: 'Suspended', status: 'True', reason: 'Suspended', message: suspendedMessage },
      now,
    );
  else if (suspended?.status === 'True')
    conditions = setCondition(
      conditions,
      { type: 'Suspended', status: 'False', reason: 'Resumed', message: resumedMessage },
      now,
    );
  if (jobs.some((j) => jobCondition(j, 'Failed')))
    conditions = setCondition(
      conditions,
      { type: 'Failed', status: 'True', reason: failedJobsReason, message: failedJobsMessage },
      now,
    );
  else if (jobs.length > 0 && jobs.every((j) => jobCondition(j, 'Complete')))
    conditions = setCondition(
      conditions,
      { type: 'Complete', status: 'True', reason: completedReason, message: completedMessage },
      now,
    );
  return { ...(trainJob.status ?? {}), conditions, jobsStatus: jobsStatus(jobs) };
}

/** Whether the TrainJob has finished (Complete or Failed): Trainer then leaves it as it is. */
export function trainJobFinished(trainJob: Json): boolean {
  return ((trainJob.status?.conditions ?? []) as TrainJobCondition[]).some(
    (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );
}

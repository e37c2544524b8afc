/**
 * Where a TrainJob stands, read from the conditions Kubeflow Trainer's controller sets
 * (trainer.kubeflow.org/v1alpha1): `Complete` and `Failed` copied from the JobSet's own conditions with
 * JobSet's reason and message (e.g. FailedJobs), `Failed` with reason TrainingRuntimeNotSupported or
 * DeadlineExceeded set by the TrainJob controller itself, and `Suspended` (reason Suspended / Resumed)
 * while a queue holds it. The status comes from the API server, so every field is checked before use; a
 * status this reader cannot make sense of counts as still running.
 */
import type { Condition } from '../resources.js';

export type TrainJobState =
  | { state: 'running' }
  | { state: 'suspended' }
  | { state: 'complete' }
  | { state: 'failed'; reason: string; message: string };

function conditionsOf(
  obj: unknown,
): Array<{ type: string; status: string; reason: string; message: string }> {
  const status = (obj as { status?: unknown } | null)?.status;
  const list = (status as { conditions?: unknown } | null | undefined)?.conditions;
  if (!Array.isArray(list)) return [];
  return list.flatMap((c) => {
    if (c === null || typeof c !== 'object') return [];
    const { type, status: s, reason, message } = c as Record<string, unknown>;
    if (typeof type !== 'string' || typeof s !== 'string') return [];
    return [
      {
        type,
        status: s,
        reason: typeof reason === 'string' ? reason : '',
        message: typeof message === 'string' ? message.slice(0, 1024) : '',
      },
    ];
  });
}

export function trainJobState(obj: unknown): TrainJobState {
  const conditions = conditionsOf(obj);
  const on = (type: string) => conditions.find((c) => c.type === type && c.status === 'True');
  // Failed before Complete: a JobSet that failed after some jobs completed is a failure.
  const failed = on('Failed');
  if (failed) return { state: 'failed', reason: failed.reason || 'Failed', message: failed.message };
  if (on('Complete')) return { state: 'complete' };
  if (on('Suspended')) return { state: 'suspended' };
  return { state: 'running' };
}

/** The run's status condition for a failed TrainJob: Kubeflow's reason and message, and what failed. */
export function trainJobFailedCondition(
  name: string,
  failure: { reason: string; message: string },
  now: Date,
): Condition {
  return {
    type: 'TrainJobFailed',
    status: 'True',
    reason: /^[A-Za-z][A-Za-z0-9_,:]*$/.test(failure.reason) ? failure.reason : 'Failed',
    message: `TrainJob ${name} failed${failure.message ? `: ${failure.message}` : ''} (kubectl describe trainjob ${name} shows its pods)`,
    lastTransitionTime: now.toISOString(),
  };
}

/**
 * The status of one RLHFIteration: a row per stage started so far (its Job, attempts, times), the
 * iteration's phase and conditions, and its metrics once evaluated.
 */
import type { V1Job } from '@kubernetes/client-node';
import { iterationStages, iterationUnit, type StageUnit } from '@rlhf/workflow';
import { type ConditionInput, setConditions } from './conditions.js';
import type { IterationStatus, Phase, StageStatus } from './resources.js';
import type { RecordsView } from './run-records.js';
import { jobAttempts, jobFailure, jobState, metricsOf } from './run-status.js';
import { stageJobName } from './stage-job.js';

export const iterationNameOf = (run: string, t: number) => `${run}-${t}`;

export function iterationStatusOf(o: {
  run: string;
  iteration: number;
  records: RecordsView;
  jobs: ReadonlyMap<string, V1Job>;
  /** The unit in progress when it belongs to this iteration. */
  current: StageUnit | undefined;
  runFailed: boolean;
  generation: number;
  previous: IterationStatus | undefined;
  now: string;
}): IterationStatus {
  const stages: StageStatus[] = [];
  for (const s of iterationStages) {
    const jobName = stageJobName(o.run, iterationUnit(o.iteration, s));
    const job = o.jobs.get(jobName);
    const rec = o.records.stage(o.iteration, s);
    if (!rec && !job) continue;
    const state: Phase = rec ? 'Succeeded' : job && jobState(job) === 'failed' ? 'Failed' : 'Running';
    const started = rec?.startedAt ?? (job?.status?.startTime as unknown as string | Date | undefined);
    stages.push({
      name: s,
      state,
      ...(job ? { jobName, attempts: jobAttempts(job) } : {}),
      ...(state === 'Failed' && job ? { message: jobFailure(job) } : {}),
      ...(started ? { startTime: new Date(started).toISOString().replace(/\.\d+Z$/, 'Z') } : {}),
      ...(rec ? { completionTime: new Date(rec.finishedAt).toISOString().replace(/\.\d+Z$/, 'Z') } : {}),
    });
  }
  const evaluated = o.records.iteration(o.iteration);
  const phase: Phase = evaluated
    ? 'Succeeded'
    : o.runFailed
      ? 'Failed'
      : o.current || stages.length
        ? 'Running'
        : 'Pending';
  const conditions: ConditionInput[] = [
    {
      type: 'Succeeded',
      status: phase === 'Succeeded' ? 'True' : 'False',
      reason: phase === 'Succeeded' ? 'Evaluated' : phase,
      message: '',
    },
    {
      type: 'Failed',
      status: phase === 'Failed' ? 'True' : 'False',
      reason: phase === 'Failed' ? 'StageFailed' : phase,
      message: phase === 'Failed' ? `stage ${o.current?.stage} failed` : '',
    },
    {
      type: 'Progressing',
      status: phase === 'Running' ? 'True' : 'False',
      reason: phase === 'Running' ? 'StageRunning' : phase,
      message: phase === 'Running' && o.current ? `stage ${o.current.stage}` : '',
    },
  ];
  return {
    phase,
    ...(phase === 'Running' && o.current ? { stage: o.current.stage } : {}),
    stages,
    ...(evaluated ? { metrics: metricsOf(evaluated) } : {}),
    observedGeneration: o.generation,
    conditions: setConditions(o.previous?.conditions, conditions, o.generation, o.now),
  };
}

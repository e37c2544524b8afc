/**
 * The train stage of a run with spec.engines.train.type trainjob, one reconcile pass at a time, in three
 * steps the controller owns (each owned by the RLHFIteration, so deleting the run deletes them):
 *
 * 1. prepare: a stage Job (`rlhf stage train --trainjob-step prepare`) writes the policy as a Hugging Face
 *    checkpoint and the pairs in TRL's format into the iteration's directory on the run's shared volume.
 * 2. the TrainJob (trainjob-manifest.ts), named by run, iteration and attempt, followed through the
 *    conditions Kubeflow Trainer sets. A failed one is kept (its pods and conditions say why) and the next
 *    attempt is created, up to spec.maxRetries retries as for stage Jobs; then the run fails naming it.
 * 3. import: the unit's own stage Job (`rlhf stage train` with the directory), which imports the saved
 *    checkpoint as the iteration's policy and writes the train record; reconcile creates it.
 *
 * Like reconcile, a pass never waits: it creates what is missing and says where the stage stands. Every
 * name is deterministic and the TrainJobs are listed from the API server each pass, so a restarted
 * controller adopts what the one before created and never makes a second TrainJob of an attempt.
 */
import type { V1EnvVar, V1Job, V1OwnerReference } from '@kubernetes/client-node';
import type { RlhfRunSpec } from '@rlhf/run-spec';
import { type StageUnit, trainJobDir, trainJobDirEnv, trainJobPaths, trainJobVolume } from '@rlhf/workflow';
import type { RecordsView } from '../run-records.js';
import { jobAttempts, jobFailure, jobState } from '../run-status.js';
import { type JobConfig, stageJob, stageJobName } from '../stage-job.js';
import { type TrainJobConfig, trainJobManifest, trainJobName } from './trainjob-manifest.js';
import { trainJobState } from './trainjob-status.js';

/** What the flow reads and writes on the cluster besides the stage Jobs. */
export interface TrainJobClusterPort {
  /** The TrainJobs of one iteration of a run (by label), straight from the API server. */
  trainJobsOf(namespace: string, run: string, iteration: number): Promise<Record<string, unknown>[]>;
  /** Creates; one that exists already counts as created (names are deterministic). */
  createTrainJob(obj: Record<string, unknown>): Promise<void>;
  /** Deletes (its Jobs and pods with it); one already gone counts as deleted. */
  deleteTrainJob(namespace: string, name: string): Promise<void>;
  createJob(job: V1Job): Promise<void>;
  deleteJob(namespace: string, name: string): Promise<void>;
}

export type TrainJobStep =
  /** Not a train stage on a TrainJob: the unit's stage Job runs as usual. */
  | { step: 'none' }
  | { step: 'waiting'; message: string; warning?: { reason: string; message: string } }
  | {
      step: 'failed';
      message: string;
      reason: string;
      /** The TrainJob that failed last, with Kubeflow's reason and message. */
      trainJob?: { name: string; reason: string; message: string };
    }
  /** The TrainJob completed (or there was nothing to train): the unit's stage Job imports, with `env`. */
  | { step: 'import'; env: V1EnvVar[] };

/** `<run>-<t>-train-prepare`, shortened like stage Job names. */
export function prepareJobName(run: string, iteration: number): string {
  return stageJobName(run, { iteration, stage: 'train-prepare' });
}

/** Whether the unit's train stage is handed to a TrainJob. */
export function trainsOnTrainJob(spec: RlhfRunSpec, unit: StageUnit): boolean {
  return unit.stage === 'train' && spec.engines.train.type === 'trainjob';
}

const attemptOf = (obj: Record<string, unknown>, run: string, t: number, max: number): number => {
  const name = (obj.metadata as { name?: string } | undefined)?.name;
  for (let a = 1; a <= max; a++) if (trainJobName(run, t, a) === name) return a;
  return 0;
};

/** jobsStatus as "node: 1 active, 0 succeeded", from Kubeflow's per-replicated-job counts. */
function jobsStatusText(obj: Record<string, unknown>): string {
  const list = (obj.status as { jobsStatus?: unknown } | undefined)?.jobsStatus;
  if (!Array.isArray(list)) return '';
  const parts = list.flatMap((j) => {
    if (!j || typeof j !== 'object') return [];
    const r = j as Record<string, unknown>;
    const n = (k: string) => (typeof r[k] === 'number' ? (r[k] as number) : 0);
    if (typeof r.name !== 'string') return [];
    return [
      `${r.name.slice(0, 63)}: ${n('active')} active, ${n('succeeded')} succeeded, ${n('failed')} failed`,
    ];
  });
  return parts.length ? ` (${parts.join('; ')})` : '';
}

export class TrainJobs {
  constructor(
    private readonly cluster: TrainJobClusterPort,
    private readonly config: TrainJobConfig,
    private readonly job: JobConfig,
  ) {}

  async reconcile(o: {
    run: { name: string; namespace: string; uid?: string; spec: RlhfRunSpec };
    unit: StageUnit;
    owner: V1OwnerReference;
    jobs: ReadonlyMap<string, V1Job>;
    records: RecordsView;
  }): Promise<TrainJobStep> {
    const { run, unit } = o;
    if (!trainsOnTrainJob(run.spec, unit)) return { step: 'none' };
    const t = unit.iteration;
    const volume = trainJobVolume(run.spec);
    if (!volume)
      // Validation refuses such a run; a spec that reached here anyway gets the same answer.
      return {
        step: 'failed',
        reason: 'InvalidSpec',
        message:
          'spec.placement.volumes: engines.train trainjob needs a writable volume shared by the stage pods and the TrainJob',
      };
    const dir = trainJobDir(volume, run, t);
    const env: V1EnvVar[] = [{ name: trainJobDirEnv, value: dir }];
    // An iteration without pairs keeps its policy: the import step records it without any TrainJob.
    const pairs = o.records.stage(t, 'pair')?.result.pairs;
    if (pairs === 0) return { step: 'import', env };
    // The import Job exists: the TrainJob completed on an earlier pass.
    if (o.jobs.has(stageJobName(run.name, unit))) return { step: 'import', env };

    const prepName = prepareJobName(run.name, t);
    const prep = o.jobs.get(prepName);
    if (!prep) {
      await this.cluster.createJob(
        stageJob({
          run,
          unit,
          owner: o.owner,
          config: this.job,
          env,
          step: { name: prepName, args: ['--trainjob-step', 'prepare'], label: 'prepare' },
        }),
      );
      return { step: 'waiting', message: `Job ${prepName} prepares the TrainJob's policy and pairs` };
    }
    const prepState = jobState(prep);
    if (prepState === 'failed')
      return {
        step: 'failed',
        reason: 'StageFailed',
        message: `preparing the TrainJob failed after ${jobAttempts(prep)} attempt(s) (Job ${prepName}): ${jobFailure(prep)}`,
      };
    if (prepState !== 'complete')
      return {
        step: 'waiting',
        message:
          prepState === 'suspended'
            ? `Job ${prepName} waits for its queue (${run.spec.placement.queue})`
            : `Job ${prepName} prepares the TrainJob's policy and pairs`,
      };

    const attempts = run.spec.maxRetries + 1;
    const existing = await this.cluster.trainJobsOf(run.namespace, run.name, t);
    // A restart (restart() below) waits until the old attempts are gone: a name is never reused early.
    const leaving = existing.find(
      (o) => (o.metadata as { deletionTimestamp?: string } | undefined)?.deletionTimestamp,
    );
    if (leaving)
      return {
        step: 'waiting',
        message: `TrainJob ${(leaving.metadata as { name?: string }).name} is being deleted`,
      };
    let latest: { obj: Record<string, unknown>; attempt: number } | undefined;
    for (const obj of existing) {
      // Attempts made under an earlier spec with more retries count too.
      const attempt = attemptOf(obj, run.name, t, attempts + existing.length);
      if (attempt > (latest?.attempt ?? 0)) latest = { obj, attempt };
    }
    const create = async (attempt: number) => {
      const paths = trainJobPaths(dir);
      await this.cluster.createTrainJob(
        trainJobManifest({
          run,
          iteration: t,
          owner: o.owner,
          paths: {
            model: paths.checkpoint,
            reference: paths.checkpoint,
            pairs: paths.pairs,
            output: paths.output,
          },
          config: this.config,
          // The shared volume under the same name and path as in the stage pods.
          artifactVolumes: [
            {
              name: `run-${volume.name}`,
              mountPath: volume.mountPath,
              claimName: volume.claimName,
            },
          ],
          seed: run.spec.generation.seed + t,
          attempt,
        }),
      );
    };
    if (!latest) {
      await create(1);
      return { step: 'waiting', message: `TrainJob ${trainJobName(run.name, t)} created` };
    }
    const name = trainJobName(run.name, t, latest.attempt);
    const state = trainJobState(latest.obj);
    if (state.state === 'complete') return { step: 'import', env };
    if (state.state === 'suspended')
      return { step: 'waiting', message: `TrainJob ${name} is suspended (its queue has not admitted it)` };
    if (state.state === 'running')
      return { step: 'waiting', message: `TrainJob ${name} running${jobsStatusText(latest.obj)}` };
    const why = `${state.reason}${state.message ? `: ${state.message}` : ''}`;
    if (latest.attempt >= attempts)
      return {
        step: 'failed',
        reason: 'TrainJobFailed',
        trainJob: { name, reason: state.reason, message: state.message },
        message: `TrainJob ${name} failed after ${latest.attempt} attempt(s): ${why} (kubectl describe trainjob ${name} shows its pods)`,
      };
    const next = trainJobName(run.name, t, latest.attempt + 1);
    await create(latest.attempt + 1);
    const message = `TrainJob ${name} failed (${why}); retrying as ${next} (attempt ${latest.attempt + 1} of ${attempts})`;
    return { step: 'waiting', message, warning: { reason: 'TrainJobFailed', message } };
  }

  /**
   * Starts the unit's hand-off over (the spec changed after it failed): deletes the iteration's TrainJobs
   * and its prepare Job, as a failed stage Job is deleted to run again. The next pass prepares anew.
   */
  async restart(o: {
    run: { name: string; namespace: string; spec: RlhfRunSpec };
    unit: StageUnit;
    jobs: ReadonlyMap<string, V1Job>;
  }): Promise<void> {
    const { run } = o;
    if (!trainsOnTrainJob(run.spec, o.unit)) return;
    for (const obj of await this.cluster.trainJobsOf(run.namespace, run.name, o.unit.iteration)) {
      const name = (obj.metadata as { name?: string } | undefined)?.name;
      if (name) await this.cluster.deleteTrainJob(run.namespace, name);
    }
    const prep = prepareJobName(run.name, o.unit.iteration);
    if (o.jobs.has(prep)) await this.cluster.deleteJob(run.namespace, prep);
  }
}

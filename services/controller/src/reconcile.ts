/**
 * One level-triggered, idempotent pass over an RLHFRun: from what exists (the run, its RLHFIterations and
 * Jobs in the informer caches, the stage records in KV) to what should (the finalizer, the iteration
 * object and the Job of the first unit without a record, the status). It never waits: a pass creates at
 * most what is missing and returns; the next event (a Job's status, a KV record) brings the next pass.
 * Job names are deterministic, so a controller restarted mid-stage finds the Job it created before.
 */
import type { V1Job, V1OwnerReference } from '@kubernetes/client-node';
import {
  emptyPlacementPolicy,
  type FieldProblem,
  InvalidRunError,
  mountClashes,
  type PlacementPolicy,
  parseRunObject,
  placementProblems,
  type RlhfRunSpec,
  unmountedInputs,
} from '@rlhf/run-spec';
import { modelUri, type StageUnit, stageUnits } from '@rlhf/workflow';
import {
  boundedMessage,
  type ConditionInput,
  conditionOf,
  runningConditions,
  setConditions,
} from './conditions.js';
import { iterationNameOf, iterationStatusOf } from './iteration-status.js';
import { hfHome } from './job-sources.js';
import {
  apiVersion,
  finalizer,
  type IterationObject,
  type IterationSpec,
  type IterationStatus,
  type Phase,
  type RunObject,
  type RunStatus,
  splitKey,
} from './resources.js';
import type { RecordsView } from './run-records.js';
import { bestOf, evaluatedIterations, jobAttempts, jobFailure, jobState } from './run-status.js';
import { type JobConfig, stageJob, stageJobName } from './stage-job.js';
import type { TrainJobs } from './trainjob/train-jobs.js';
import { trainJobFailedCondition } from './trainjob/trainjob-status.js';
import { unitPolicy } from './vllm/unit-policy.js';
import type { VllmServers } from './vllm/vllm-servers.js';

/** What reconcile reads (caches) and writes (API calls) on the cluster. */
export interface ClusterPort {
  getRun(namespace: string, name: string): RunObject | undefined;
  jobsOf(namespace: string, run: string): V1Job[];
  iterationsOf(namespace: string, run: string): IterationObject[];
  createJob(job: V1Job): Promise<void>;
  deleteJob(namespace: string, name: string): Promise<void>;
  createIteration(obj: IterationObject): Promise<IterationObject>;
  /** Writes `status` through the status subresource; fields of `previous` it lacks are removed. */
  patchRunStatus(namespace: string, name: string, status: RunStatus, previous: RunStatus): Promise<void>;
  patchIterationStatus(
    namespace: string,
    name: string,
    status: IterationStatus,
    previous: IterationStatus,
  ): Promise<void>;
  setRunFinalizers(run: RunObject, finalizers: string[]): Promise<void>;
  /** A Kubernetes Event on the run (best effort: a failure to record one is logged, not raised). */
  recordRunEvent(run: RunObject, event: RunEvent): Promise<void>;
}

export interface RunEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface ReconcileDeps {
  cluster: ClusterPort;
  records: { of(namespace: string, name: string): RecordsView };
  /** Deletes the run's artifacts and KV records (the finalizer's work). */
  deleteRunData(namespace: string, name: string): Promise<void>;
  jobConfig: JobConfig;
  /** What spec.placement may ask for; absent: the empty policy (no toleration, selector, ... allowed). */
  placementPolicy?: PlacementPolicy;
  /** vLLM servers of runs with spec.engines.generate.type vllm; absent: none are made (no endpoint env). */
  vllm?: VllmServers;
  /** The train stage of runs with spec.engines.train.type trainjob; absent: such runs train built in. */
  trainJobs?: TrainJobs;
  now(): Date;
}

export type ReconcileResult = 'done' | { requeueAfterMs: number };

const ownerRef = (kind: string, obj: { metadata: { name?: string; uid?: string } }): V1OwnerReference => ({
  apiVersion,
  kind,
  name: obj.metadata.name as string,
  uid: obj.metadata.uid as string,
  controller: true,
  blockOwnerDeletion: true,
});

/** A unit is done when its last stage's record exists; an evaluation also when its metrics record does. */
function unitDone(records: RecordsView, u: StageUnit): boolean {
  if (!records.stage(u.until.iteration, u.until.stage)) return false;
  return u.until.stage !== 'evaluate' || records.iteration(u.until.iteration) !== undefined;
}

const unitLabel = (u: StageUnit) => (u.stage === 'setup' ? 'setup' : `iteration ${u.iteration} ${u.stage}`);

export async function reconcile(deps: ReconcileDeps, key: string): Promise<ReconcileResult> {
  const { namespace, name } = splitKey(key);
  const run = deps.cluster.getRun(namespace, name);
  if (!run) return 'done';
  const finalizers = run.metadata.finalizers ?? [];
  if (run.metadata.deletionTimestamp) {
    if (finalizers.includes(finalizer)) {
      await deps.deleteRunData(namespace, name);
      await deps.cluster.setRunFinalizers(
        run,
        finalizers.filter((f) => f !== finalizer),
      );
    }
    return 'done';
  }
  if (!finalizers.includes(finalizer)) await deps.cluster.setRunFinalizers(run, [...finalizers, finalizer]);

  const generation = run.metadata.generation ?? 1;
  const now = deps.now().toISOString();
  const status = run.status ?? {};
  const write = async (next: RunStatus, conditions: ConditionInput[]) => {
    const desired: RunStatus = {
      ...next,
      observedGeneration: generation,
      conditions: setConditions(status.conditions, conditions, generation, now),
    };
    if (!sameStatus(status, desired)) await deps.cluster.patchRunStatus(namespace, name, desired, status);
  };

  const checked = checkSpec(
    run,
    namespace,
    name,
    deps.placementPolicy ?? emptyPlacementPolicy,
    deps.jobConfig,
  );
  if ('problems' in checked) {
    const message = boundedMessage(
      `${checked.problems.map((p) => `${p.path}: ${p.message}`).join('; ')} (fix the spec and apply it again)`,
    );
    const previous = conditionOf(status.conditions, 'Ready');
    await write({ ...status, phase: 'Pending' }, [
      { type: 'Ready', status: 'False', reason: 'InvalidSpec', message },
      { type: 'Progressing', status: 'False', reason: 'InvalidSpec', message: 'waiting for a valid spec' },
    ]);
    // One Event per new refusal: a pass that finds the same problems again records nothing.
    if (previous?.reason !== 'InvalidSpec' || previous.message !== message)
      await deps.cluster.recordRunEvent(run, { type: 'Warning', reason: 'InvalidSpec', message });
    return 'done';
  }
  const spec = checked.spec;

  const records = deps.records.of(namespace, name);
  const units = stageUnits(spec);
  // The last unit is done only once its pod has stored the run's summary (after the last metrics).
  const last = units[units.length - 1] as StageUnit;
  const current = units.find((u) => !unitDone(records, u) || (u === last && !records.summary()));
  const jobs = new Map(deps.cluster.jobsOf(namespace, name).map((j) => [j.metadata?.name as string, j]));
  const iterations = new Map(deps.cluster.iterationsOf(namespace, name).map((i) => [i.spec.iteration, i]));
  const metrics = evaluatedIterations(records, spec.iterations);
  const best = bestOf(metrics);
  const latest = metrics[metrics.length - 1];
  const base: RunStatus = {
    ...status,
    iteration: current ? current.iteration : spec.iterations,
    progress: `${current ? current.iteration : spec.iterations}/${spec.iterations}`,
    ...(metrics.length ? { iterations: metrics } : {}),
    ...(latest ? { latest } : {}),
    ...(best ? { bestIteration: best.iteration, ...(best.policy ? { bestPolicy: best.policy } : {}) } : {}),
    startTime: status.startTime ?? now,
  };

  // Every iteration reached so far has its object, with its status brought up to date.
  const reached = current ? current.iteration : spec.iterations;
  const plan = records.plan();
  for (let t = 1; t <= reached && plan; t++) {
    let it = iterations.get(t);
    if (!it) {
      it = await deps.cluster.createIteration(iterationObject(run, spec, t, records, plan));
      iterations.set(t, it);
    }
    const failed = current?.iteration === t && jobs.get(stageJobName(name, current));
    // A train stage handed to a TrainJob fails without its own Job failing: the run's status says so.
    const handedOffFailed =
      current?.iteration === t &&
      status.phase === 'Failed' &&
      status.stage === current.stage &&
      (status.observedGeneration ?? 0) >= generation;
    const runFailed = (failed ? jobState(failed) === 'failed' : false) || handedOffFailed;
    const desired = iterationStatusOf({
      run: name,
      iteration: t,
      records,
      jobs,
      current: current?.iteration === t ? current : undefined,
      runFailed,
      generation: it.metadata.generation ?? 1,
      previous: it.status,
      now,
    });
    if (!sameStatus(it.status ?? {}, desired))
      await deps.cluster.patchIterationStatus(
        namespace,
        it.metadata.name as string,
        desired,
        it.status ?? {},
      );
  }

  if (!current) {
    await deps.vllm?.reconcile({
      run: { name, namespace, spec },
      unit: undefined,
      policy: undefined,
      owner: undefined,
    });
    const { stage: _done, ...rest } = base;
    await write({ ...rest, phase: 'Succeeded', completionTime: status.completionTime ?? now }, [
      {
        type: 'Ready',
        status: 'True',
        reason: 'Succeeded',
        message: `all ${spec.iterations} iterations done`,
      },
      { type: 'Progressing', status: 'False', reason: 'Succeeded', message: 'the run has finished' },
      {
        type: 'Succeeded',
        status: 'True',
        reason: 'AllIterationsDone',
        message: `best iteration ${best?.iteration ?? '-'}`,
      },
      { type: 'Failed', status: 'False', reason: 'Succeeded', message: '' },
    ]);
    // One Event when the run finishes (kubectl describe shows it); a later pass finds Succeeded already.
    if (conditionOf(status.conditions, 'Succeeded')?.status !== 'True')
      await deps.cluster.recordRunEvent(run, {
        type: 'Normal',
        reason: 'Succeeded',
        message: `all ${spec.iterations} iterations done, best iteration ${best?.iteration ?? '-'}`,
      });
    return 'done';
  }

  const jobName = stageJobName(name, current);
  const job = jobs.get(jobName);
  const label = unitLabel(current);
  if (job && jobState(job) === 'failed') {
    if (status.phase === 'Failed' && (status.observedGeneration ?? 0) < generation) {
      // The spec changed after the failure: run the unit again with it.
      await deps.cluster.deleteJob(namespace, jobName);
      return { requeueAfterMs: 1000 };
    }
    const recorded = records.lastError();
    const why =
      recorded && recorded.iteration === current.iteration && recorded.stage === current.stage
        ? recorded.message
        : jobFailure(job);
    const message = `${label} failed after ${jobAttempts(job)} attempt(s) (Job ${jobName}): ${why}`;
    await deps.vllm?.reconcile({
      run: { name, namespace, spec },
      unit: undefined,
      policy: undefined,
      owner: undefined,
    });
    await write(
      { ...base, phase: 'Failed', stage: current.stage, completionTime: status.completionTime ?? now },
      [
        { type: 'Ready', status: 'False', reason: 'StageFailed', message },
        { type: 'Progressing', status: 'False', reason: 'StageFailed', message: `stopped at ${label}` },
        { type: 'Succeeded', status: 'False', reason: 'StageFailed', message: '' },
        { type: 'Failed', status: 'True', reason: 'StageFailed', message },
      ],
    );
    // One Event when the run fails: a pass that finds it Failed already records nothing.
    if (conditionOf(status.conditions, 'Failed')?.status !== 'True')
      await deps.cluster.recordRunEvent(run, { type: 'Warning', reason: 'StageFailed', message });
    return 'done';
  }
  if (!job && current.iteration > 0 && !iterations.has(current.iteration)) {
    // Setup's plan record has not reached the cache yet (or was lost): nothing to own the Job yet.
    return { requeueAfterMs: 2000 };
  }
  const iteration = iterations.get(current.iteration);
  const owner =
    current.iteration === 0
      ? ownerRef('RLHFRun', run)
      : iteration
        ? ownerRef('RLHFIteration', iteration)
        : undefined;
  // A unit sampling through vLLM starts once its server is ready; the servers of other units go.
  const server = deps.vllm
    ? await deps.vllm.reconcile({
        run: { name, namespace, spec },
        unit: current,
        policy: unitPolicy(spec, current, records, iteration),
        owner,
      })
    : undefined;
  if (!job && server?.state === 'waiting') {
    await write({ ...base, phase: 'Running' as Phase, stage: current.stage }, [
      ...runningConditions('EngineStarting', `${label}: ${server.message}`),
    ]);
    return { requeueAfterMs: 2000 };
  }
  // A train stage handed to a TrainJob: prepare Job, TrainJob, then the unit's Job imports its checkpoint.
  if (
    !job &&
    deps.trainJobs &&
    status.phase === 'Failed' &&
    status.stage === current.stage &&
    (status.observedGeneration ?? 0) < generation
  ) {
    // The spec changed after the hand-off failed: start it over with the new spec.
    await deps.trainJobs.restart({ run: { name, namespace, spec }, unit: current, jobs });
    const { completionTime: _again, ...open } = base;
    await write({ ...open, phase: 'Running' as Phase, stage: current.stage }, [
      ...runningConditions('TrainJobRunning', `${label}: the spec changed after the failure; training again`),
      ...(conditionOf(status.conditions, 'TrainJobFailed')
        ? [{ type: 'TrainJobFailed', status: 'False' as const, reason: 'Retrying', message: '' }]
        : []),
    ]);
    return { requeueAfterMs: 1000 };
  }
  const handOff =
    !job && deps.trainJobs && owner
      ? await deps.trainJobs.reconcile({
          run: { name, namespace, spec, ...(run.metadata.uid ? { uid: run.metadata.uid } : {}) },
          unit: current,
          owner,
          jobs,
          records,
        })
      : undefined;
  if (handOff?.step === 'failed') {
    const message = boundedMessage(`${label} failed: ${handOff.message}`);
    const before = conditionOf(status.conditions, 'Failed');
    await write(
      { ...base, phase: 'Failed', stage: current.stage, completionTime: status.completionTime ?? now },
      [
        { type: 'Ready', status: 'False', reason: 'StageFailed', message },
        { type: 'Progressing', status: 'False', reason: 'StageFailed', message: `stopped at ${label}` },
        { type: 'Succeeded', status: 'False', reason: 'StageFailed', message: '' },
        { type: 'Failed', status: 'True', reason: handOff.reason, message },
        ...(handOff.trainJob
          ? [trainJobFailedCondition(handOff.trainJob.name, handOff.trainJob, deps.now())]
          : []),
      ],
    );
    // One Event per failure: a later pass that finds the run failed the same way records nothing.
    if (before?.status !== 'True' || before.message !== message)
      await deps.cluster.recordRunEvent(run, { type: 'Warning', reason: handOff.reason, message });
    return 'done';
  }
  if (handOff?.step === 'waiting') {
    if (handOff.warning) await deps.cluster.recordRunEvent(run, { type: 'Warning', ...handOff.warning });
    const { completionTime: _waiting, ...open } = base;
    await write({ ...open, phase: 'Running' as Phase, stage: current.stage }, [
      ...runningConditions('TrainJobRunning', boundedMessage(`${label}: ${handOff.message}`)),
    ]);
    // No informer follows TrainJobs: their conditions are read again on the next pass.
    return { requeueAfterMs: 3000 };
  }
  if (!job) {
    await deps.cluster.createJob(
      stageJob({
        run: { name, namespace, spec, ...(run.metadata.uid ? { uid: run.metadata.uid } : {}) },
        unit: current,
        // Set: a unit of an iteration without its object returned above.
        owner: owner as V1OwnerReference,
        config: deps.jobConfig,
        ...(server?.state === 'ready' ? { env: server.env } : {}),
        ...(handOff?.step === 'import' ? { env: handOff.env } : {}),
      }),
    );
  }
  const state = job ? jobState(job) : 'active';
  const message =
    state === 'suspended'
      ? `${label}: Job ${jobName} waits for its queue (${spec.placement.queue})`
      : state === 'complete'
        ? `${label}: Job ${jobName} finished; waiting for its record`
        : `${label}: Job ${jobName} running${job?.status?.active ? ` (${job.status.active} pod(s))` : ''}`;
  const { completionTime: _running, ...open } = base;
  await write(
    { ...open, phase: 'Running' as Phase, stage: current.stage },
    runningConditions('StageRunning', message),
  );
  // A Job that completed before its record arrived is checked again shortly.
  return state === 'complete' ? { requeueAfterMs: 2000 } : 'done';
}

/**
 * The run's spec, validated and defaulted, allowed by the placement policy, its volumes clear of the
 * pods' own mounts and every file:// input on a mounted volume; or every problem, each naming its field.
 * Nothing is created for a run with problems.
 */
function checkSpec(
  run: RunObject,
  namespace: string,
  name: string,
  policy: PlacementPolicy,
  jobs: JobConfig,
): { spec: RlhfRunSpec } | { problems: FieldProblem[] } {
  let spec: RlhfRunSpec;
  try {
    spec = parseRunObject(
      { apiVersion, kind: 'RLHFRun', metadata: { name, namespace }, spec: run.spec },
      `RLHFRun ${namespace}/${name}`,
    ).spec;
  } catch (err) {
    if (!(err instanceof InvalidRunError)) throw err;
    return { problems: err.problems };
  }
  const chartMounts = [...(jobs.artifactVolumes ?? []).map((v) => v.mountPath), ...(jobs.hf ? [hfHome] : [])];
  const refused = [
    ...placementProblems(spec, policy),
    ...mountClashes(spec.placement.volumes, chartMounts),
    ...unmountedInputs(
      spec,
      (jobs.artifactVolumes ?? []).map((v) => v.mountPath),
    ),
  ];
  return refused.length ? { problems: refused } : { spec };
}

function iterationObject(
  run: RunObject,
  spec: RlhfRunSpec,
  t: number,
  records: RecordsView,
  plan: NonNullable<ReturnType<RecordsView['plan']>>,
): IterationObject {
  const ref = { namespace: run.metadata.namespace as string, name: run.metadata.name as string };
  const previous =
    t === 1 ? plan.policy : (records.stage(t - 1, 'train')?.result.model as string | undefined);
  const policy = previous ?? plan.policy;
  const iterSpec: IterationSpec = {
    run: ref.name,
    iteration: t,
    policy,
    reference: spec.reference === 'initial' ? plan.policy : policy,
    output: modelUri(ref, t, 'policy'),
    prompts: {
      dataset: plan.prompts,
      offset: (t - 1) * spec.prompts.perIteration,
      count: spec.prompts.perIteration,
      ...(plan.evalPrompts ? { eval: plan.evalPrompts } : {}),
    },
  };
  return {
    apiVersion,
    kind: 'RLHFIteration',
    metadata: {
      name: iterationNameOf(ref.name, t),
      namespace: ref.namespace,
      labels: { 'rlhf.dev/run': ref.name, 'rlhf.dev/iteration': String(t) },
      ownerReferences: [ownerRef('RLHFRun', run)],
    },
    spec: iterSpec,
  };
}

/** Status equality ignoring key order and undefined fields. */
function sameStatus(a: object, b: object): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.entries(x)
            .filter(([, y]) => y !== undefined)
            .sort(([p], [q]) => (p < q ? -1 : 1)),
        )
      : x,
  );
}

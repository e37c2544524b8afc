/**
 * reconcile() against in-memory ports: the decisions of one pass (which Job, which status, which
 * condition) without a server, so the edge cases are quick to reach.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Job } from '@kubernetes/client-node';
import {
  type ClusterPort,
  finalizer,
  type IterationObject,
  type RunEvent,
  type RunObject,
  type RunStatus,
  reconcile,
} from '@rlhf/controller';
import {
  type PlacementPolicy,
  parsePlacementPolicyYaml,
  parseRunYaml,
  type RlhfRunSpec,
} from '@rlhf/run-spec';

const spec = parseRunYaml(`apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: r}
spec:
  policy: {model: nats-obj://rlhf-models/sft}
  judge: {type: gold, task: sentiment, lengthPenalty: 0}
  prompts: {dataset: nats-obj://rlhf-data/prompts.jsonl, perIteration: 8}
  iterations: 1
  maxRetries: 2
`).spec;

class Memory implements ClusterPort {
  run: RunObject = {
    apiVersion: 'rlhf.dev/v1alpha1',
    kind: 'RLHFRun',
    metadata: { name: 'r', namespace: 'ns', uid: 'run-uid', generation: 1, finalizers: [finalizer] },
    spec,
  };
  jobs = new Map<string, V1Job>();
  iterations: IterationObject[] = [];
  calls: string[] = [];
  getRun = () => this.run;
  jobsOf = () => [...this.jobs.values()];
  iterationsOf = () => this.iterations;
  async createJob(job: V1Job) {
    this.calls.push(`create job ${job.metadata?.name}`);
    this.jobs.set(job.metadata?.name as string, job);
  }
  async deleteJob(_ns: string, name: string) {
    this.calls.push(`delete job ${name}`);
    this.jobs.delete(name);
  }
  async createIteration(obj: IterationObject) {
    this.calls.push(`create iteration ${obj.metadata.name}`);
    const created = { ...obj, metadata: { ...obj.metadata, uid: `uid-${obj.metadata.name}`, generation: 1 } };
    this.iterations.push(created);
    return created;
  }
  async patchRunStatus(_ns: string, _name: string, status: RunStatus) {
    this.calls.push('patch run status');
    this.run = { ...this.run, status };
  }
  async patchIterationStatus(_ns: string, name: string, status: IterationObject['status'] & object) {
    this.calls.push(`patch iteration status ${name}`);
    const it = this.iterations.find((i) => i.metadata.name === name);
    if (it) it.status = status;
  }
  async setRunFinalizers(_run: RunObject, finalizers: string[]) {
    this.calls.push(`finalizers ${finalizers.join(',')}`);
    this.run = { ...this.run, metadata: { ...this.run.metadata, finalizers } };
  }
  events: RunEvent[] = [];
  async recordRunEvent(_run: RunObject, event: RunEvent) {
    this.calls.push(`event ${event.reason}`);
    this.events.push(event);
  }
}

function recordsFrom(m: Map<string, unknown>) {
  return {
    of: () => ({
      stage: (t: number, s: string) => m.get(`${t}.${s}`) as never,
      iteration: (t: number) => m.get(`${t}.metrics`) as never,
      plan: () => m.get('plan') as never,
      lastError: () => m.get('error') as never,
      summary: () => m.get('summary') as never,
    }),
  };
}

const stageRecord = (t: number, s: string, result: Record<string, unknown> = {}) => ({
  stage: s,
  iteration: t,
  startedAt: '2026-01-01T00:00:00Z',
  finishedAt: '2026-01-01T00:00:01Z',
  seconds: 1,
  result,
});
const metrics = (t: number, proxy: number) => ({
  iteration: t,
  policy: `nats-obj://b/p${t}`,
  proxyReward: proxy,
  goldReward: proxy,
  winRate: 0.5,
  kl: 0,
  meanLength: 5,
  grammaticalRate: 1,
  finishedAt: '2026-01-01T00:00:02Z',
});

function setup(records = new Map<string, unknown>()) {
  const cluster = new Memory();
  const deleted: string[] = [];
  const deps = {
    cluster,
    records: recordsFrom(records),
    deleteRunData: async (ns: string, name: string) => {
      deleted.push(`${ns}/${name}`);
    },
    jobConfig: { image: 'img', natsUrl: 'nats://n:4222' },
    now: () => new Date('2026-01-01T00:00:10Z'),
  };
  return { cluster, deps, records, deleted };
}

const condition = (status: RunStatus | undefined, type: string) =>
  status?.conditions?.find((c) => c.type === type);
const failJob = (job: V1Job) => {
  job.status = {
    failed: 3,
    conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }],
  };
};

test('a new run gets the setup Job and a Running status; a second pass changes nothing', async () => {
  const { cluster, deps } = setup();
  assert.equal(await reconcile(deps, 'ns/r'), 'done');
  assert.deepEqual(cluster.calls, ['create job r-0-setup', 'patch run status']);
  assert.equal(cluster.run.status?.phase, 'Running');
  assert.equal(cluster.run.status?.stage, 'setup');
  assert.equal(cluster.run.status?.progress, '0/1');
  assert.equal(condition(cluster.run.status, 'Progressing')?.status, 'True');
  cluster.calls = [];
  await reconcile(deps, 'ns/r');
  assert.deepEqual(cluster.calls, [], 'level-triggered and idempotent: no write without a change');
});

test('after setup: the iteration object, then its generate Job owned by it', async () => {
  const { cluster, deps, records } = setup();
  records.set('0.evaluate', stageRecord(0, 'evaluate'));
  records.set('0.metrics', metrics(0, 0.1));
  records.set('plan', { policy: 'nats-obj://b/sft', prompts: 'nats-obj://b/p.jsonl', lengthPenalty: 0 });
  await reconcile(deps, 'ns/r');
  assert.deepEqual(cluster.calls.slice(0, 2), ['create iteration r-1', 'patch iteration status r-1']);
  const job = cluster.jobs.get('r-1-generate');
  assert.equal(job?.metadata?.ownerReferences?.[0]?.uid, 'uid-r-1');
  assert.equal(cluster.iterations[0]?.spec.policy, 'nats-obj://b/sft');
  assert.deepEqual(
    cluster.run.status?.iterations?.map((m) => m.iteration),
    [0],
  );
  assert.equal(cluster.run.status?.bestIteration, 0);
});

test('a Job that gave up fails the run with the recorded reason; a new generation retries the unit', async () => {
  const { cluster, deps, records } = setup();
  await reconcile(deps, 'ns/r');
  failJob(cluster.jobs.get('r-0-setup') as V1Job);
  records.set('error', {
    iteration: 0,
    stage: 'setup',
    message: 'spec.policy.model: model x does not exist',
    at: '',
  });
  await reconcile(deps, 'ns/r');
  const failed = condition(cluster.run.status, 'Failed');
  assert.equal(failed?.status, 'True');
  assert.match(
    failed?.message ?? '',
    /setup failed after 3 attempt\(s\) \(Job r-0-setup\): spec\.policy\.model/,
  );
  assert.equal(cluster.run.status?.phase, 'Failed');
  cluster.calls = [];
  await reconcile(deps, 'ns/r');
  assert.deepEqual(cluster.calls, [], 'Failed is final for this generation');
  cluster.run.metadata.generation = 2;
  assert.deepEqual(await reconcile(deps, 'ns/r'), { requeueAfterMs: 1000 });
  assert.deepEqual(cluster.calls, ['delete job r-0-setup']);
});

test('a finished run is Succeeded only once its summary is stored, with the best iteration', async () => {
  const { cluster, deps, records } = setup();
  records.set('plan', { policy: 'nats-obj://b/sft', prompts: 'nats-obj://b/p.jsonl', lengthPenalty: 0 });
  records.set('0.evaluate', stageRecord(0, 'evaluate'));
  records.set('0.metrics', metrics(0, 0.1));
  for (const s of ['generate', 'judge', 'pair', 'train', 'evaluate'])
    records.set(`1.${s}`, stageRecord(1, s, s === 'train' ? { model: 'nats-obj://b/p1' } : {}));
  records.set('1.metrics', metrics(1, 0.7));
  await reconcile(deps, 'ns/r');
  assert.equal(cluster.run.status?.phase, 'Running', 'the summary is not stored yet');
  records.set('summary', { summary: 's', report: 'r', bestIteration: 1, finishedAt: '' });
  await reconcile(deps, 'ns/r');
  assert.equal(cluster.run.status?.phase, 'Succeeded');
  assert.equal(cluster.run.status?.stage, undefined);
  assert.equal(cluster.run.status?.bestIteration, 1);
  assert.equal(cluster.run.status?.bestPolicy, 'nats-obj://b/p1');
  assert.equal(cluster.run.status?.progress, '1/1');
  assert.equal(cluster.iterations[0]?.status?.phase, 'Succeeded');
  assert.deepEqual(cluster.events, [
    { type: 'Normal', reason: 'Succeeded', message: 'all 1 iterations done, best iteration 1' },
  ]);
  cluster.calls = [];
  await reconcile(deps, 'ns/r');
  assert.deepEqual(cluster.calls, [], 'a finished run: no write, no second Event');
});

test('InvalidSpec names the field; deletion runs the finalizer once and removes it', async () => {
  const { cluster, deps, deleted } = setup();
  cluster.run = {
    ...cluster.run,
    spec: { ...spec, judge: { type: 'preference', lengthPenalty: 'auto', model: 'nats-obj://b/pm' } },
  };
  await reconcile(deps, 'ns/r');
  const ready = condition(cluster.run.status, 'Ready');
  assert.equal(ready?.reason, 'InvalidSpec');
  assert.match(ready?.message ?? '', /spec\.judge\.lengthPenalty/);
  assert.equal(cluster.jobs.size, 0);
  cluster.run.metadata.deletionTimestamp = new Date();
  await reconcile(deps, 'ns/r');
  assert.deepEqual(deleted, ['ns/r']);
  assert.deepEqual(cluster.run.metadata.finalizers, []);
  await reconcile(deps, 'ns/r');
  assert.deepEqual(deleted, ['ns/r'], 'no finalizer left: nothing more to do');
});

// Placement policy: the operator's allow-lists, checked before anything is created.
const placementPolicy = parsePlacementPolicyYaml(`
allowedTolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
allowedPriorityClasses: [rlhf-batch]
allowedNodeSelectors: {nvidia.com/gpu.product: [H100]}
allowedSchedulerNames: [volcano]
allowAffinity: true
`);
const noAffinity: PlacementPolicy = { ...placementPolicy, allowAffinity: false };
const withTrain = (train: object, extra: object = {}): RlhfRunSpec => ({
  ...spec,
  placement: { ...spec.placement, train: { ...spec.placement.train, ...train }, ...extra },
});
const gpuToleration = { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' };
const affinity = { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } };

const placementCases: {
  kind: string;
  refused: RlhfRunSpec;
  allowed: RlhfRunSpec;
  policy?: PlacementPolicy;
  field: string;
  says: RegExp;
  pod: (p: NonNullable<NonNullable<V1Job['spec']>['template']['spec']>) => unknown;
  want: unknown;
}[] = [
  {
    kind: 'toleration',
    refused: withTrain({ tolerations: [{ key: 'dedicated', operator: 'Exists' }] }),
    allowed: withTrain({ tolerations: [gpuToleration] }),
    field: 'spec.placement.train.tolerations[0]',
    says: /\{key: dedicated, operator: Exists, any effect\} is not allowed by the placement policy; allowed tolerations: \{key: nvidia\.com\/gpu, operator: Exists, effect: NoSchedule\}/,
    pod: (p) => p.tolerations,
    want: [gpuToleration],
  },
  {
    kind: 'priority class',
    refused: withTrain({ priorityClassName: 'system-cluster-critical' }),
    allowed: withTrain({ priorityClassName: 'rlhf-batch' }),
    field: 'spec.placement.train.priorityClassName',
    says: /"system-cluster-critical" is not allowed .*allowed priority classes: "rlhf-batch"/,
    pod: (p) => p.priorityClassName,
    want: 'rlhf-batch',
  },
  {
    kind: 'node selector key',
    refused: withTrain({ nodeSelector: { 'reserved-for': 'team-a' } }),
    allowed: withTrain({ nodeSelector: { 'nvidia.com/gpu.product': 'H100' } }),
    field: 'spec.placement.train.nodeSelector["reserved-for"]',
    says: /node label "reserved-for" is not allowed .*allowed node labels: "nvidia\.com\/gpu\.product"/,
    pod: (p) => p.nodeSelector,
    want: { 'nvidia.com/gpu.product': 'H100' },
  },
  {
    kind: 'node selector value',
    refused: withTrain({ nodeSelector: { 'nvidia.com/gpu.product': 'A100' } }),
    allowed: withTrain({ nodeSelector: { 'nvidia.com/gpu.product': 'H100' } }),
    field: 'spec.placement.train.nodeSelector["nvidia.com/gpu.product"]',
    says: /value "A100" is not allowed .*allowed values of nvidia\.com\/gpu\.product: "H100"/,
    pod: (p) => p.nodeSelector,
    want: { 'nvidia.com/gpu.product': 'H100' },
  },
  {
    kind: 'scheduler name',
    refused: withTrain({}, { schedulerName: 'my-scheduler' }),
    allowed: withTrain({}, { schedulerName: 'volcano' }),
    field: 'spec.placement.schedulerName',
    says: /"my-scheduler" is not allowed .*allowed schedulers: "volcano"/,
    pod: (p) => p.schedulerName,
    want: 'volcano',
  },
  {
    kind: 'affinity',
    refused: withTrain({ affinity }),
    allowed: withTrain({ affinity }),
    policy: noAffinity,
    field: 'spec.placement.train.affinity',
    says: /is not allowed by the placement policy \(allowAffinity is false/,
    pod: (p) => p.affinity,
    want: affinity,
  },
];

for (const c of placementCases) {
  test(`placement policy, ${c.kind}: refused is InvalidSpec naming the field, with an Event and no Job`, async () => {
    const { cluster, deps } = setup();
    cluster.run = { ...cluster.run, spec: c.refused };
    assert.equal(await reconcile({ ...deps, placementPolicy: c.policy ?? placementPolicy }, 'ns/r'), 'done');
    const ready = condition(cluster.run.status, 'Ready');
    assert.equal(ready?.status, 'False');
    assert.equal(ready?.reason, 'InvalidSpec');
    assert.ok(ready?.message.startsWith(`${c.field}: `), ready?.message);
    assert.match(ready?.message ?? '', c.says);
    assert.equal(condition(cluster.run.status, 'Progressing')?.reason, 'InvalidSpec');
    assert.equal(cluster.run.status?.phase, 'Pending');
    assert.equal(cluster.jobs.size, 0, 'no Job for a refused placement');
    assert.deepEqual(cluster.calls, ['patch run status', 'event InvalidSpec']);
    assert.deepEqual(cluster.events, [{ type: 'Warning', reason: 'InvalidSpec', message: ready?.message }]);
  });

  test(`placement policy, ${c.kind}: allowed reaches the stage pods`, async () => {
    const { cluster, deps } = setup();
    cluster.run = { ...cluster.run, spec: c.allowed };
    await reconcile({ ...deps, placementPolicy }, 'ns/r');
    assert.equal(condition(cluster.run.status, 'Ready')?.reason, 'Reconciled');
    const pod = cluster.jobs.get('r-0-setup')?.spec?.template.spec;
    assert.ok(pod, 'the setup Job was created');
    assert.deepEqual(c.pod(pod), c.want);
    assert.deepEqual(cluster.events, []);
  });
}

test('without a policy nothing is allowed; with none asked for, the run goes ahead', async () => {
  const { cluster, deps } = setup();
  cluster.run = { ...cluster.run, spec: withTrain({ tolerations: [gpuToleration] }) };
  await reconcile(deps, 'ns/r');
  assert.match(
    condition(cluster.run.status, 'Ready')?.message ?? '',
    /^spec\.placement\.train\.tolerations\[0\]: .*allowed tolerations: none/,
  );
  assert.equal(cluster.jobs.size, 0);
  cluster.run = { ...cluster.run, spec, metadata: { ...cluster.run.metadata, generation: 2 } };
  await reconcile(deps, 'ns/r');
  assert.equal(condition(cluster.run.status, 'Ready')?.reason, 'Reconciled');
  assert.ok(cluster.jobs.has('r-0-setup'));
});

test('a running run edited to a refused placement stops creating Jobs; one Event per new refusal', async () => {
  const { cluster, deps, records } = setup();
  const withPolicy = { ...deps, placementPolicy };
  await reconcile(withPolicy, 'ns/r');
  assert.ok(cluster.jobs.has('r-0-setup'));
  // Setup finishes; then the spec asks for a priority class the operator did not allow.
  records.set('0.evaluate', stageRecord(0, 'evaluate'));
  records.set('0.metrics', metrics(0, 0.1));
  records.set('plan', { policy: 'nats-obj://b/sft', prompts: 'nats-obj://b/p.jsonl', lengthPenalty: 0 });
  const refused = { generate: { ...spec.placement.generate, priorityClassName: 'high' } };
  cluster.run = {
    ...cluster.run,
    spec: { ...spec, placement: { ...spec.placement, ...refused } },
    metadata: { ...cluster.run.metadata, generation: 2 },
  };
  cluster.calls = [];
  await reconcile(withPolicy, 'ns/r');
  assert.deepEqual(cluster.calls, ['patch run status', 'event InvalidSpec'], 'no iteration, no generate Job');
  assert.match(
    condition(cluster.run.status, 'Ready')?.message ?? '',
    /^spec\.placement\.generate\.priorityClassName: "high"/,
  );
  cluster.calls = [];
  await reconcile(withPolicy, 'ns/r');
  assert.deepEqual(cluster.calls, [], 'the same refusal again: no write, no second Event');
  cluster.run.spec = { ...spec, placement: { ...spec.placement, schedulerName: 'other' } };
  await reconcile(withPolicy, 'ns/r');
  assert.deepEqual(cluster.calls, ['patch run status', 'event InvalidSpec'], 'a new refusal: a new Event');
  assert.equal(cluster.events.length, 2);
  cluster.calls = [];
  cluster.run.spec = spec;
  await reconcile(withPolicy, 'ns/r');
  assert.ok(cluster.jobs.has('r-1-generate'), 'a fixed spec continues where the run was');
});

test('a spec with thousands of refused tolerations gets a message the API server accepts, once', async () => {
  const { cluster, deps } = setup();
  const tolerations = Array.from({ length: 2000 }, (_, i) => ({ key: `taint-${i}`, operator: 'Exists' }));
  cluster.run = { ...cluster.run, spec: withTrain({ tolerations }) };
  await reconcile({ ...deps, placementPolicy }, 'ns/r');
  const message = condition(cluster.run.status, 'Ready')?.message ?? '';
  assert.ok(message.length <= 32768, `${message.length} characters`);
  assert.match(message, /^spec\.placement\.train\.tolerations\[0\]: .* \.\.\. \(\d+ more characters\)$/);
  assert.equal(cluster.jobs.size, 0);
  cluster.calls = [];
  await reconcile({ ...deps, placementPolicy }, 'ns/r');
  assert.deepEqual(cluster.calls, [], 'the cut message compares equal: no second write or Event');
});

test('a file:// input on no mounted volume is InvalidSpec; on the chart volume or the run own, the run goes ahead', async () => {
  const { cluster, deps } = setup();
  const onData = { ...spec, prompts: { ...spec.prompts, dataset: 'file:///data/prompts.jsonl' } };
  cluster.run = { ...cluster.run, spec: onData };
  await reconcile(deps, 'ns/r');
  const ready = condition(cluster.run.status, 'Ready');
  assert.equal(ready?.reason, 'InvalidSpec');
  assert.match(
    ready?.message ?? '',
    /spec\.prompts\.dataset: file:\/\/\/data\/prompts\.jsonl is under no volume/,
  );
  assert.equal(cluster.jobs.size, 0);
  // The chart's artifact volume at /data.
  const chartVolume = {
    ...deps,
    jobConfig: {
      ...deps.jobConfig,
      artifactVolumes: [{ name: 'data', mountPath: '/data', claimName: 'rlhf-data' }],
    },
  };
  cluster.run = { ...cluster.run, metadata: { ...cluster.run.metadata, generation: 2 } };
  await reconcile(chartVolume, 'ns/r');
  assert.equal(condition(cluster.run.status, 'Ready')?.reason, 'Reconciled');
  assert.ok(cluster.jobs.has('r-0-setup'));
  // The run's own volume, allowed by the policy, and mounted in its Job.
  const second = setup();
  const own = {
    ...onData,
    placement: { ...onData.placement, volumes: [{ name: 'd', claimName: 'team-data', mountPath: '/data' }] },
  };
  second.cluster.run = { ...second.cluster.run, spec: own };
  const allowed = parsePlacementPolicyYaml('allowedVolumeClaims: [team-data]');
  await reconcile({ ...second.deps, placementPolicy: allowed }, 'ns/r');
  assert.equal(condition(second.cluster.run.status, 'Ready')?.reason, 'Reconciled');
  const job = second.cluster.jobs.get('r-0-setup');
  assert.deepEqual(
    job?.spec?.template.spec?.volumes?.find((v) => v.name === 'run-d')?.persistentVolumeClaim,
    { claimName: 'team-data' },
  );
});

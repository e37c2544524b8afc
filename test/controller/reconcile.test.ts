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
  type RunObject,
  type RunStatus,
  reconcile,
} from '@rlhf/controller';
import { parseRunYaml } from '@rlhf/run-spec';

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

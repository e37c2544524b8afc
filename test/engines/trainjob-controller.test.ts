/**
 * The controller's train stage on a Kubeflow TrainJob, on the fake API server (real HTTP through
 * client-node for the TrainJobs, the vendored Kubeflow Trainer CRD installed): reconcile() passes with
 * `engines.train.type: trainjob` run the prepare Job, then create the TrainJob (owned by the RLHFIteration,
 * never twice, also after a restart), follow its conditions into the run's status, and create the unit's
 * import Job once it is Complete. A Failed TrainJob is retried as a new one up to spec.maxRetries, its
 * reason in the run's status and Events; then the run fails naming it. (No Kubeflow controller runs here:
 * the test sets the TrainJob's conditions as Kubeflow Trainer does.)
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CustomObjectsApi, type V1Job } from '@kubernetes/client-node';
import {
  defaultTrainJobConfig,
  type IterationObject,
  KubeTrainJobCluster,
  prepareJobName,
  reconcile,
  TrainJobs,
} from '@rlhf/controller';
import { parsePlacementPolicy, parseRunYaml, type RlhfRunSpec } from '@rlhf/run-spec';
import { trainJobDirEnv } from '@rlhf/workflow';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { FakeApiServer, fakeKubeConfig } from '../kube/fake-api-server/index.js';
import {
  type MemoryClusterPort,
  recordsOf,
  runPort,
  setupRecords,
  stageRecord,
} from './fixtures/reconcile-harness.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ns = 'team-a';
const trainjobs = 'trainjobs.trainer.kubeflow.org';

const specOf = (maxRetries: number): RlhfRunSpec =>
  parseRunYaml(`apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: r, namespace: ${ns}}
spec:
  policy: {model: nats-obj://rlhf-models/sft}
  judge: {type: gold, task: sentiment, lengthPenalty: 0}
  prompts: {dataset: nats-obj://rlhf-data/prompts.jsonl, perIteration: 8}
  iterations: 1
  maxRetries: ${maxRetries}
  reference: previous
  dpo: {batchSize: 4}
  engines: {train: {type: trainjob}}
  placement:
    queue: team-a-queue
    volumes: [{name: data, claimName: rlhf-data, mountPath: /data, readOnly: true}, {name: work, claimName: rlhf-work, mountPath: /work}]
`).spec;

let server: FakeApiServer;

before(async () => {
  server = await FakeApiServer.start();
  for (const f of ['rlhfruns.rlhf.dev.yaml', 'rlhfiterations.rlhf.dev.yaml'])
    server.loadCrdFile(join(root, 'deploy/crds', f));
  server.loadCrdFile(join(root, 'test/fixtures/kubeflow/trainer.kubeflow.org_trainjobs.yaml'));
});
after(async () => {
  await server?.stop();
});

function harness(name: string, o: { maxRetries?: number; pairs?: number } = {}) {
  const spec = specOf(o.maxRetries ?? 1);
  const port = runPort(server, ns, name, spec);
  const records = setupRecords();
  records.set('1.generate', stageRecord(1, 'generate'));
  records.set('1.judge', stageRecord(1, 'judge'));
  records.set('1.pair', stageRecord(1, 'pair', { pairs: o.pairs ?? 4 }));
  const kc = fakeKubeConfig(server, ns);
  const jobConfig = { image: 'ghcr.io/example/rlhf:1.0', natsUrl: 'nats://nats:4222' };
  const requests: string[] = [];
  const trainJobsOn = () => {
    const kube = new KubeTrainJobCluster(kc.makeApiClient(CustomObjectsApi), (what) => requests.push(what));
    return new TrainJobs(
      {
        trainJobsOf: (n, r, t) => kube.trainJobsOf(n, r, t),
        createTrainJob: (obj) => kube.createTrainJob(obj),
        deleteTrainJob: (n, name) => kube.deleteTrainJob(n, name),
        createJob: (job) => port.createJob(job),
        deleteJob: (n, name) => port.deleteJob(n, name),
      },
      { ...defaultTrainJobConfig, image: 'ghcr.io/example/trl:1.16' },
      jobConfig,
    );
  };
  const deps = {
    cluster: port,
    records: recordsOf(records),
    deleteRunData: async () => {},
    jobConfig,
    placementPolicy: parsePlacementPolicy({ allowedVolumeClaims: ['rlhf-data', 'rlhf-work'] }),
    trainJobs: trainJobsOn(),
    now: () => new Date('2026-01-01T00:00:10Z'),
  };
  return { port, records, deps, key: `${ns}/${name}`, requests, trainJobsOn };
}

const trainJobsOf = (run: string) =>
  server.client
    .list(trainjobs, ns, { labelSelector: `rlhf.dev/run=${run}` })
    .map((o) => o as unknown as { metadata: Record<string, never>; spec: Record<string, never> });

const condition = (port: MemoryClusterPort, type: string) =>
  port.run.status?.conditions?.find((c) => c.type === type);

function finishJob(port: MemoryClusterPort, name: string, type: 'Complete' | 'Failed', message = ''): void {
  const job = port.jobs.get(name) as V1Job;
  job.status = {
    ...(type === 'Complete' ? { succeeded: 1 } : { failed: 1 }),
    conditions: [{ type, status: 'True', reason: type === 'Failed' ? 'BackoffLimitExceeded' : '', message }],
  };
}

/** What Kubeflow Trainer sets: the JobSet's condition copied as Complete or Failed, and jobsStatus. */
function setTrainJobStatus(name: string, state: 'running' | 'complete' | 'failed'): void {
  const obj = server.client.get(trainjobs, ns, name) as never as Record<string, unknown>;
  const counts = { active: state === 'running' ? 1 : 0, succeeded: state === 'complete' ? 1 : 0 };
  const conditions =
    state === 'complete'
      ? [
          {
            type: 'Complete',
            status: 'True',
            reason: 'AllJobsCompleted',
            message: 'jobset completed successfully',
          },
        ]
      : state === 'failed'
        ? [
            {
              type: 'Failed',
              status: 'True',
              reason: 'FailedJobs',
              message: 'jobset failed due to one or more job failures',
            },
          ]
        : [];
  server.client.updateStatus(trainjobs, ns, {
    ...obj,
    status: {
      conditions: conditions.map((c) => ({ ...c, lastTransitionTime: '2026-01-01T00:00:05Z' })),
      jobsStatus: [
        { name: 'node', ready: counts.active, failed: state === 'failed' ? 1 : 0, suspended: 0, ...counts },
      ],
    },
  } as never);
}

test('prepare Job, then one TrainJob owned by the iteration (adopted after a restart), then the import Job', async () => {
  const { port, deps, key, requests, trainJobsOn } = harness('flow');
  // Pass 1: the iteration object and the prepare Job; no TrainJob before the files are written.
  assert.deepEqual(await reconcile(deps, key), { requeueAfterMs: 3000 });
  const prepName = prepareJobName('flow', 1);
  assert.equal(prepName, 'flow-1-train-prepare');
  const prep = port.jobs.get(prepName) as V1Job;
  new Job(prep as never).validate();
  const c = prep.spec?.template.spec?.containers[0];
  assert.deepEqual(c?.args, ['stage', 'train', '--iteration', '1', '--trainjob-step', 'prepare']);
  const dir = '/work/rlhf-trainjob/team-a/flow/iteration-1';
  assert.equal(c?.env?.find((e) => e.name === trainJobDirEnv)?.value, dir);
  assert.ok(
    c?.volumeMounts?.some((m) => m.mountPath === '/work'),
    'the prepare pod mounts the work volume',
  );
  assert.equal(prep.metadata?.labels?.['rlhf.dev/step'], 'prepare');
  assert.equal(trainJobsOf('flow').length, 0);
  assert.equal(condition(port, 'Progressing')?.reason, 'TrainJobRunning');
  assert.match(
    condition(port, 'Progressing')?.message ?? '',
    /iteration 1 train: Job flow-1-train-prepare prepares/,
  );

  // The prepare Job completes: the TrainJob, owned by the iteration, reading what prepare wrote.
  finishJob(port, prepName, 'Complete');
  await reconcile(deps, key);
  const [tj, ...more] = trainJobsOf('flow');
  assert.ok(tj);
  assert.equal(more.length, 0);
  assert.equal(tj.metadata.name, 'flow-1-trl');
  const iteration = port.iterations[0] as IterationObject;
  assert.deepEqual(
    (tj.metadata.ownerReferences as unknown as Array<{ kind: string; uid: string }>).map((r) => [
      r.kind,
      r.uid,
    ]),
    [['RLHFIteration', iteration.metadata.uid]],
  );
  const trainer = tj.spec.trainer as unknown as { image: string; command: string[]; args: string[] };
  assert.equal(trainer.image, 'ghcr.io/example/trl:1.16');
  assert.deepEqual(trainer.command, ['trl', 'dpo']);
  const arg = (flag: string) => trainer.args[trainer.args.indexOf(flag) + 1];
  assert.equal(arg('--model_name_or_path'), `${dir}/policy-hf`);
  assert.equal(arg('--dataset_name'), `${dir}/pairs`);
  assert.equal(arg('--output_dir'), `${dir}/output`);
  assert.equal(
    (tj.metadata.labels as unknown as Record<string, string>)['kueue.x-k8s.io/queue-name'],
    'team-a-queue',
  );
  const patch = JSON.stringify(tj.spec.runtimePatches);
  assert.match(patch, /"claimName":"rlhf-work"/);
  assert.doesNotMatch(patch, /rlhf-data/, 'only the writable work volume goes to the trainer');

  // Running: its jobsStatus in the run's status; passes and a restarted controller make no second one.
  setTrainJobStatus('flow-1-trl', 'running');
  await reconcile(deps, key);
  assert.match(
    condition(port, 'Progressing')?.message ?? '',
    /TrainJob flow-1-trl running \(node: 1 active, 0 succeeded, 0 failed\)/,
  );
  const restarted = { ...deps, trainJobs: trainJobsOn() };
  await reconcile(restarted, key);
  await reconcile(restarted, key);
  assert.deepEqual(
    trainJobsOf('flow').map((t) => t.metadata.name),
    ['flow-1-trl'],
  );
  assert.equal(requests.filter((r) => r === 'create trainjobs').length, 1, 'one create request in all');
  assert.ok(!port.jobs.has('flow-1-train'), 'no import while the TrainJob runs');

  // Complete: the unit's own Job imports the checkpoint from the same directory.
  setTrainJobStatus('flow-1-trl', 'complete');
  assert.equal(await reconcile(restarted, key), 'done');
  const imp = port.jobs.get('flow-1-train') as V1Job;
  new Job(imp as never).validate();
  const ic = imp.spec?.template.spec?.containers[0];
  assert.deepEqual(ic?.args, ['stage', 'train', '--iteration', '1']);
  assert.equal(ic?.env?.find((e) => e.name === trainJobDirEnv)?.value, dir);
  assert.equal(condition(port, 'Progressing')?.reason, 'StageRunning');
  // Deleting the iteration (as deleting the run does) removes its TrainJob.
  server.client.delete('rlhfiterations.rlhf.dev', ns, iteration.metadata.name as string);
  assert.equal(trainJobsOf('flow').length, 0);
});

test('a Failed TrainJob is retried as a new one with its reason surfaced; past maxRetries the run fails naming it', async () => {
  const { port, deps, key } = harness('fails', { maxRetries: 1 });
  await reconcile(deps, key);
  finishJob(port, prepareJobName('fails', 1), 'Complete');
  await reconcile(deps, key);
  setTrainJobStatus('fails-1-trl', 'failed');
  await reconcile(deps, key);
  assert.deepEqual(
    trainJobsOf('fails')
      .map((t) => t.metadata.name)
      .sort(),
    ['fails-1-trl', 'fails-1-trl-2'],
    'the failed TrainJob is kept for its pods and conditions; attempt 2 is a new one',
  );
  const retry =
    /TrainJob fails-1-trl failed \(FailedJobs: jobset failed due to one or more job failures\); retrying as fails-1-trl-2 \(attempt 2 of 2\)/;
  assert.match(condition(port, 'Progressing')?.message ?? '', retry);
  assert.equal(port.run.status?.phase, 'Running');
  assert.ok(
    port.events.some((e) => e.type === 'Warning' && e.reason === 'TrainJobFailed' && retry.test(e.message)),
  );

  setTrainJobStatus('fails-1-trl-2', 'failed');
  assert.equal(await reconcile(deps, key), 'done');
  assert.equal(port.run.status?.phase, 'Failed');
  const failed = condition(port, 'Failed');
  assert.equal(failed?.status, 'True');
  assert.equal(failed?.reason, 'TrainJobFailed');
  assert.match(
    failed?.message ?? '',
    /iteration 1 train failed: TrainJob fails-1-trl-2 failed after 2 attempt\(s\): FailedJobs: jobset failed due to one or more job failures \(kubectl describe trainjob fails-1-trl-2/,
  );
  const tjFailed = condition(port, 'TrainJobFailed');
  assert.equal(tjFailed?.status, 'True');
  assert.equal(tjFailed?.reason, 'FailedJobs', "Kubeflow's reason");
  assert.match(
    tjFailed?.message ?? '',
    /^TrainJob fails-1-trl-2 failed: jobset failed due to one or more job failures/,
  );
  assert.equal(trainJobsOf('fails').length, 2, 'no third attempt');
  const events = port.events.length;
  assert.equal(await reconcile(deps, key), 'done');
  assert.equal(port.iterationStatus.get('fails-1')?.phase, 'Failed', 'the iteration fails with its run');
  assert.equal(port.events.length, events, 'a pass that finds the same failure records no second Event');
  assert.equal(trainJobsOf('fails').length, 2);
  assert.ok(!port.jobs.has('fails-1-train'), 'nothing is imported from a failed TrainJob');

  // A changed spec starts the stage over: the old TrainJobs and the prepare Job go, then the steps again.
  port.run = {
    ...port.run,
    metadata: { ...port.run.metadata, generation: 2 },
    spec: { ...port.run.spec, maxRetries: 2 },
  };
  assert.deepEqual(await reconcile(deps, key), { requeueAfterMs: 1000 });
  assert.equal(trainJobsOf('fails').length, 0, 'the failed TrainJobs are deleted');
  assert.ok(!port.jobs.has('fails-1-train-prepare'));
  assert.equal(port.run.status?.phase, 'Running');
  assert.equal(condition(port, 'TrainJobFailed')?.status, 'False');
  await reconcile(deps, key);
  finishJob(port, 'fails-1-train-prepare', 'Complete');
  await reconcile(deps, key);
  assert.deepEqual(
    trainJobsOf('fails').map((t) => t.metadata.name),
    ['fails-1-trl'],
    'attempt 1 again, under the new spec',
  );
});

test('a failed prepare Job fails the run with its reason; an iteration without pairs imports at once', async () => {
  const bad = harness('prep');
  await reconcile(bad.deps, bad.key);
  finishJob(bad.port, 'prep-1-train-prepare', 'Failed', 'Job has reached the specified backoff limit');
  await reconcile(bad.deps, bad.key);
  assert.equal(bad.port.run.status?.phase, 'Failed');
  assert.match(
    condition(bad.port, 'Failed')?.message ?? '',
    /preparing the TrainJob failed after 1 attempt\(s\) \(Job prep-1-train-prepare\): BackoffLimitExceeded: Job has reached/,
  );
  assert.equal(trainJobsOf('prep').length, 0);

  const none = harness('nopairs', { pairs: 0 });
  await reconcile(none.deps, none.key);
  assert.deepEqual([...none.port.jobs.keys()], ['nopairs-1-train'], 'no prepare Job, no TrainJob');
  assert.equal(trainJobsOf('nopairs').length, 0);
});

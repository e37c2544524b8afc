/**
 * The Kubeflow Trainer stand-in (test/kube/kubeflow-standin/) on the fake API server with the fake kubelet:
 * a TrainJob becomes an Indexed Job owned by it, with the runtime's container, the trainer's command, the
 * torchrun PET_* variables and the runtime patch's volumes; its conditions end as Trainer's do (Complete /
 * AllJobsCompleted, Failed / FailedJobs), Suspended follows spec.suspend (Resumed after), and a runtime of
 * another kind fails with TrainingRuntimeNotSupported. Deleting the TrainJob removes its Jobs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { V1Job } from '@kubernetes/client-node';
import { type OpenApiSchema, validateCustomResource } from '@rlhf/run-spec';
import { parseAllDocuments } from 'yaml';
import { FakeApiServer, fakeKubeConfig, PatchTypes } from './fake-api-server/index.js';
import { FakeKubelet } from './fake-kubelet.js';
import { until } from './fixtures/clients.js';
import {
  createRuntime,
  type Json,
  KubeflowTrainerStandIn,
  kubeflowCrdFiles,
  type TrainJobCondition,
} from './kubeflow-standin/index.js';

/** The v1alpha1 OpenAPI schema of a vendored Kubeflow CRD, by kind. */
function kubeflowSchema(kind: string): OpenApiSchema {
  for (const f of kubeflowCrdFiles)
    for (const d of parseAllDocuments(readFileSync(f, 'utf8'))) {
      const crd = d.toJS() as Json | null;
      if (crd?.kind === 'CustomResourceDefinition' && crd.spec.names.kind === kind)
        return crd.spec.versions.find((v: Json) => v.name === 'v1alpha1').schema.openAPIV3Schema;
    }
  throw new Error(`no CRD of kind ${kind}`);
}

const ns = 'default';
const trainjobs = 'trainjobs.trainer.kubeflow.org';
let server: FakeApiServer;
let kubelet: FakeKubelet;
let standIn: KubeflowTrainerStandIn;
const errors: unknown[] = [];
const work = mkdtempSync(join(tmpdir(), 'standin-'));

before(async () => {
  server = await FakeApiServer.start();
  for (const f of kubeflowCrdFiles) server.loadCrdFile(f);
  const kc = fakeKubeConfig(server, ns);
  await createRuntime(kc);
  kubelet = new FakeKubelet(server).start();
  standIn = await new KubeflowTrainerStandIn(kc, { namespace: ns, onError: (e) => errors.push(e) }).start();
});
after(async () => {
  await standIn?.stop();
  await kubelet?.stop();
  await server?.stop();
});

function trainJob(name: string, command: string[], extra: Json = {}): Json {
  return {
    apiVersion: 'trainer.kubeflow.org/v1alpha1',
    kind: 'TrainJob',
    metadata: { name, namespace: ns },
    spec: {
      runtimeRef: {
        name: 'torch-distributed',
        apiGroup: 'trainer.kubeflow.org',
        kind: 'ClusterTrainingRuntime',
      },
      trainer: { command, numNodes: 1, numProcPerNode: 1, env: [{ name: 'HF_HUB_OFFLINE', value: '1' }] },
      runtimePatches: [
        {
          manager: 'rlhf.dev/controller',
          trainingRuntimeSpec: {
            template: {
              spec: {
                replicatedJobs: [
                  {
                    name: 'node',
                    template: {
                      spec: {
                        template: {
                          spec: {
                            volumes: [
                              { name: 'run-work', persistentVolumeClaim: { claimName: 'rlhf-work' } },
                            ],
                            containers: [
                              { name: 'node', volumeMounts: [{ name: 'run-work', mountPath: work }] },
                            ],
                          },
                        },
                      },
                    },
                  },
                ],
              },
            },
          },
        },
      ],
      ...extra,
    },
  };
}

const get = (name: string) => server.client.get(trainjobs, ns, name) as unknown as Json;
const conditionOf = (name: string, type: string) =>
  ((get(name)?.status?.conditions ?? []) as TrainJobCondition[]).find((c) => c.type === type);

test('a TrainJob becomes an Indexed Job with the trainer command, PET_* env and the patched volume; then Complete', async () => {
  const out = join(work, 'env.txt');
  server.client.create(
    trainjobs,
    ns,
    trainJob('ok', ['sh', '-c', `env | grep -E '^(PET_|HF_HUB)' | sort > ${out}`]) as never,
  );
  await until(() => conditionOf('ok', 'Complete')?.status === 'True', 'the TrainJob to complete', 30_000);
  const c = conditionOf('ok', 'Complete');
  assert.equal(c?.reason, 'AllJobsCompleted');
  assert.equal(c?.message, 'jobset completed successfully');
  assert.deepEqual(get('ok').status.jobsStatus, [
    { name: 'node', ready: 0, succeeded: 1, failed: 0, active: 0, suspended: 0 },
  ]);
  const job = server.client.get('jobs.batch', ns, 'ok-node-0') as unknown as V1Job;
  assert.equal(job.spec?.completionMode, 'Indexed');
  assert.equal(job.metadata?.ownerReferences?.[0]?.kind, 'TrainJob');
  assert.equal(job.metadata?.ownerReferences?.[0]?.uid, get('ok').metadata.uid);
  const container = job.spec?.template.spec?.containers[0];
  assert.equal(container?.image, 'pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime', "the runtime's image");
  assert.deepEqual(container?.volumeMounts, [{ name: 'run-work', mountPath: work }]);
  assert.deepEqual(job.spec?.template.spec?.volumes, [
    { name: 'run-work', persistentVolumeClaim: { claimName: 'rlhf-work' } },
  ]);
  assert.deepEqual(readFileSync(out, 'utf8').trim().split('\n'), [
    'HF_HUB_OFFLINE=1',
    'PET_MASTER_ADDR=ok-node-0-0.ok',
    'PET_MASTER_PORT=29400',
    'PET_NNODES=1',
    'PET_NODE_RANK=0',
    'PET_NPROC_PER_NODE=1',
  ]);
  // What the stand-in wrote (the status included) is valid by Kubeflow's own TrainJob schema.
  assert.deepEqual(validateCustomResource(kubeflowSchema('TrainJob'), get('ok')).problems, []);
  server.client.delete(trainjobs, ns, 'ok');
  assert.equal(
    server.client.list('jobs.batch', ns, { labelSelector: 'jobset.sigs.k8s.io/jobset-name=ok' }).length,
    0,
  );
});

test('a failing trainer fails the TrainJob with FailedJobs; Suspended follows spec.suspend; another runtime kind is not supported', async () => {
  server.client.create(trainjobs, ns, trainJob('bad', ['sh', '-c', 'exit 3']) as never);
  await until(() => conditionOf('bad', 'Failed')?.status === 'True', 'the TrainJob to fail', 60_000);
  assert.equal(conditionOf('bad', 'Failed')?.reason, 'FailedJobs');
  assert.equal(conditionOf('bad', 'Failed')?.message, 'jobset failed due to one or more job failures');
  assert.equal(conditionOf('bad', 'Complete'), undefined);

  server.client.create(trainjobs, ns, trainJob('held', ['sh', '-c', 'exit 0'], { suspend: true }) as never);
  await until(
    () => conditionOf('held', 'Suspended')?.status === 'True',
    'the TrainJob to be suspended',
    30_000,
  );
  assert.equal(conditionOf('held', 'Suspended')?.message, 'TrainJob is suspended');
  const held = server.client.get('jobs.batch', ns, 'held-node-0') as unknown as V1Job;
  assert.equal(held.spec?.suspend, true, 'its Job waits too');
  assert.equal(kubelet.runningPods().length, 0);
  // Kueue admits it: spec.suspend false.
  server.client.patch(trainjobs, ns, 'held', PatchTypes.merge, { spec: { suspend: false } });
  await until(
    () => conditionOf('held', 'Complete')?.status === 'True',
    'the resumed TrainJob to complete',
    30_000,
  );
  assert.equal(conditionOf('held', 'Suspended')?.status, 'False');
  assert.equal(conditionOf('held', 'Suspended')?.reason, 'Resumed');

  server.client.create(
    trainjobs,
    ns,
    trainJob('odd', ['true'], {
      runtimeRef: { name: 'x', apiGroup: 'example.com', kind: 'Runtime' },
    }) as never,
  );
  await until(() => conditionOf('odd', 'Failed')?.status === 'True', 'the TrainJob to be refused', 30_000);
  assert.equal(conditionOf('odd', 'Failed')?.reason, 'TrainingRuntimeNotSupported');
  assert.equal(conditionOf('odd', 'Failed')?.message, 'unsupported runtime: Runtime.example.com');
  assert.equal(
    server.client.list('jobs.batch', ns, { labelSelector: 'jobset.sigs.k8s.io/jobset-name=odd' }).length,
    0,
  );
  assert.deepEqual(errors, []);
});

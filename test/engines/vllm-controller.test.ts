/**
 * The controller's vLLM servers on the fake API server (real HTTP through client-node): reconcile() passes
 * with `engines.generate.type: vllm` create the sampling unit's Deployment and Service before its Job, hold
 * the Job until the Deployment is ready, give the Job the server's endpoint, delete the server when the unit
 * is done, serve evaluate the policy iteration t trained, and leave the garbage collector nothing to miss:
 * deleting the RLHFIteration removes its server. A run on the built-in engine makes no such request.
 * (The fake API server runs no Deployment controller: the test sets the Deployment's status as the real
 * one does once the pods pass their readiness probe.)
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AppsV1Api, CoreV1Api, type V1Deployment, type V1Job } from '@kubernetes/client-node';
import {
  engineModelEnv,
  engineUrlEnv,
  type IterationObject,
  KubeVllmCluster,
  parseVllmConfig,
  reconcile,
  VllmServers,
} from '@rlhf/controller';
import { parseRunYaml, type RlhfRunSpec } from '@rlhf/run-spec';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { FakeApiServer, fakeKubeConfig } from '../kube/fake-api-server/index.js';
import { until } from '../kube/fixtures/clients.js';
import { recordsOf, runPort, setupRecords, stageRecord } from './fixtures/reconcile-harness.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ns = 'team-a';
const deployments = 'deployments.apps';
const services = 'services';

const specOf = (engine: 'vllm' | 'builtin'): RlhfRunSpec =>
  parseRunYaml(`apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: r, namespace: ${ns}}
spec:
  policy: {model: nats-obj://rlhf-models/sft}
  judge: {type: gold, task: sentiment, lengthPenalty: 0}
  prompts: {dataset: nats-obj://rlhf-data/prompts.jsonl, perIteration: 8}
  iterations: 1
  engines: {generate: {type: ${engine}}}
  placement:
    generate: {replicas: 2, gpus: ${engine === 'vllm' ? 1 : 0}}
`).spec;

let server: FakeApiServer;

before(async () => {
  server = await FakeApiServer.start();
  for (const f of ['rlhfruns.rlhf.dev.yaml', 'rlhfiterations.rlhf.dev.yaml'])
    server.loadCrdFile(join(root, 'deploy/crds', f));
});
after(async () => {
  await server?.stop();
});

function harness(engine: 'vllm' | 'builtin', name: string) {
  const spec = specOf(engine);
  const port = runPort(server, ns, name, spec);
  const records = setupRecords();
  const kc = fakeKubeConfig(server, ns);
  const jobConfig = { image: 'ghcr.io/example/rlhf:1.0', natsUrl: 'nats://nats:4222' };
  const vllm = new VllmServers(
    new KubeVllmCluster({ apps: kc.makeApiClient(AppsV1Api), core: kc.makeApiClient(CoreV1Api) }),
    parseVllmConfig('{"image": "vllm/vllm-openai:v0.11.0", "port": 8000}'),
    jobConfig,
  );
  const deps = {
    cluster: port,
    records: recordsOf(records),
    deleteRunData: async () => {},
    jobConfig,
    vllm,
    now: () => new Date('2026-01-01T00:00:10Z'),
  };
  return { port, records, deps, key: `${ns}/${name}` };
}

const live = (resource: string, run: string) =>
  server.client
    .list(resource, ns, { labelSelector: `rlhf.dev/run=${run},rlhf.dev/component=vllm` })
    .filter((o) => !(o.metadata as { deletionTimestamp?: string }).deletionTimestamp)
    .map((o) => (o.metadata as { name: string }).name);

function markReady(name: string): void {
  const d = server.client.get(deployments, ns, name) as unknown as V1Deployment;
  server.client.updateStatus(deployments, ns, {
    ...d,
    status: {
      observedGeneration: d.metadata?.generation,
      replicas: d.spec?.replicas,
      updatedReplicas: d.spec?.replicas,
      readyReplicas: d.spec?.replicas,
      availableReplicas: d.spec?.replicas,
    },
  } as never);
}

test('generate waits for its vLLM server, then runs against it; the server goes when the unit ends', async () => {
  const { port, records, deps, key } = harness('vllm', 'r');
  // Pass 1: the iteration object, the server, no Job yet.
  assert.deepEqual(await reconcile(deps, key), { requeueAfterMs: 2000 });
  assert.deepEqual(live(deployments, 'r'), ['vllm-r-1-generate']);
  assert.deepEqual(live(services, 'r'), ['vllm-r-1-generate']);
  assert.equal(port.jobs.size, 0, 'no stage Job before the server is ready');
  const progressing = port.run.status?.conditions?.find((c) => c.type === 'Progressing');
  assert.equal(progressing?.reason, 'EngineStarting');
  assert.match(progressing?.message ?? '', /iteration 1 generate: vLLM server vllm-r-1-generate starting/);

  const d = server.client.get(deployments, ns, 'vllm-r-1-generate') as unknown as V1Deployment;
  new Deployment(d as never).validate();
  new Service(server.client.get(services, ns, 'vllm-r-1-generate') as never).validate();
  const iteration = port.iterations[0] as IterationObject;
  assert.equal(d.metadata?.ownerReferences?.[0]?.uid, iteration.metadata.uid, 'owned by the RLHFIteration');
  assert.ok(
    d.spec?.template.spec?.initContainers?.some((c) => c.args?.includes(iteration.spec.policy)),
    'serves the policy the iteration samples from',
  );

  // A second pass while it starts creates nothing more.
  server.resetRequestCounts();
  assert.deepEqual(await reconcile(deps, key), { requeueAfterMs: 2000 });
  assert.equal(
    server.totalRequests((k) => k.startsWith('create')),
    0,
  );

  markReady('vllm-r-1-generate');
  assert.equal(await reconcile(deps, key), 'done');
  const job = port.jobs.get('r-1-generate');
  const env = Object.fromEntries(
    (job?.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]),
  );
  assert.equal(env[engineUrlEnv], `http://vllm-r-1-generate.${ns}.svc:8000/v1`);
  assert.equal(env[engineModelEnv], 'policy');

  // generate done -> judge: the generate server is removed.
  records.set('1.generate', stageRecord(1, 'generate'));
  await reconcile(deps, key);
  assert.ok(port.jobs.has('r-1-judge'));
  assert.deepEqual(live(deployments, 'r'), []);
  assert.deepEqual(live(services, 'r'), []);

  // train done -> evaluate serves what iteration 1 trained.
  for (const s of ['judge', 'pair']) records.set(`1.${s}`, stageRecord(1, s));
  records.set('1.train', stageRecord(1, 'train', { model: 'nats-obj://rlhf-runs/team-a/r/1/policy' }));
  assert.deepEqual(await reconcile(deps, key), { requeueAfterMs: 2000 });
  assert.deepEqual(live(deployments, 'r'), ['vllm-r-1-evaluate']);
  const e = server.client.get(deployments, ns, 'vllm-r-1-evaluate') as unknown as V1Deployment;
  assert.ok(
    e.spec?.template.spec?.initContainers?.[0]?.args?.includes('nats-obj://rlhf-runs/team-a/r/1/policy'),
  );

  // Deleting the iteration (as deleting the run does) leaves nothing behind.
  server.client.delete('rlhfiterations.rlhf.dev', ns, iteration.metadata.name as string);
  await until(() => live(deployments, 'r').length === 0 && live(services, 'r').length === 0, 'the GC', 5000);
});

test('a run that ends or fails keeps no server', async () => {
  const { port, records, deps, key } = harness('vllm', 'f');
  await reconcile(deps, key);
  assert.deepEqual(live(deployments, 'f'), ['vllm-f-1-generate']);
  markReady('vllm-f-1-generate');
  await reconcile(deps, key);
  const job = port.jobs.get('f-1-generate') as V1Job;
  job.status = {
    failed: 4,
    conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }],
  };
  records.set('error', undefined);
  await reconcile(deps, key);
  assert.equal(port.run.status?.phase, 'Failed');
  assert.deepEqual(live(deployments, 'f'), []);
  assert.deepEqual(live(services, 'f'), []);
});

test('a run on the built-in engine makes no vLLM request', async () => {
  const { port, deps, key } = harness('builtin', 'b');
  server.resetRequestCounts();
  assert.equal(await reconcile(deps, key), 'done');
  assert.ok(port.jobs.has('b-1-generate'));
  assert.equal(
    server.totalRequests((k) => k.includes('deployments') || k.includes('services')),
    0,
  );
});

/**
 * The chart grants the controller exactly what it calls. The controller runs on the fake API server (real
 * HTTP, real NATS) through every path that touches the API: a run from its finalizer to its first stage
 * Jobs, a Job that fails and a spec change that deletes it, placement refusals (Events, repeated), deletion,
 * leader election. The server logs each request as RBAC sees it (verb, group, resource, namespace); the
 * rendered Role/ClusterRole rules must equal that set plus the few grants no request shows (below, each
 * with its reason). Namespaced, every request stays in the release namespace, so a Role suffices; with
 * clusterWide the informers list and watch across namespaces, which only a ClusterRole grants.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type RunningController, startController } from '@rlhf/controller';
import { RunState } from '@rlhf/orchestrator';
import { connectNats, createLogger, type NatsConnection, openStateKv } from '@rlhf/platform';
import { natsForTests, type TestNats } from '@rlhf/platform/testing';
import { chartRenderer, type K8sObject } from '../chart/render-chart.js';
import { FakeApiServer, fakeKubeConfig, type RequestRecord } from '../kube/fake-api-server/index.js';
import { until } from '../kube/fixtures/clients.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const releaseNs = 'rlhf-system';
const runs = 'rlhfruns.rlhf.dev';
const logger = createLogger('rbac-test', { level: 'error' });

/** Grants no request in this test shows, and why the controller needs them. */
const notObserved: Record<string, string> = {
  // kube-cluster.ts createIteration: an iteration created by an earlier pass but not yet in the cache.
  'rlhf.dev|rlhfiterations|get': 'read back after a 409 AlreadyExists on create',
  // Admission (OwnerReferencesPermissionEnforcement), not a call: ownerReferences with blockOwnerDeletion.
  'rlhf.dev|rlhfruns/finalizers|update': 'iterations and setup Jobs are owned by runs',
  'rlhf.dev|rlhfiterations/finalizers|update': 'stage Jobs are owned by iterations',
  // vllm/kube-vllm-cluster.ts: only runs with engines.generate.type vllm call these (the runs here are
  // built-in); test/engines/vllm-controller.test.ts drives them on the fake API server.
  'apps|deployments|list': 'the vLLM servers of a run',
  'apps|deployments|create': 'a sampling unit gets its vLLM server',
  'apps|deployments|delete': 'a vLLM server goes when its unit ends',
  '|services|list': 'the vLLM Services of a run',
  '|services|create': 'a vLLM server gets its Service',
  '|services|delete': 'a vLLM Service goes when its unit ends',
  // trainjob/kube-trainjob-cluster.ts: only runs with engines.train.type trainjob call these;
  // test/engines/trainjob-controller.test.ts drives them on the fake API server.
  'trainer.kubeflow.org|trainjobs|list': "an iteration's TrainJobs, with their conditions",
  'trainer.kubeflow.org|trainjobs|create': 'a train stage gets its TrainJob (one per attempt)',
  'trainer.kubeflow.org|trainjobs|delete': 'a spec changed after a failed TrainJob starts the stage over',
};

let server: FakeApiServer;
let nats: TestNats;
let nc: NatsConnection;
const chart = chartRenderer();

before(async () => {
  server = await FakeApiServer.start({ recordRequests: true });
  for (const f of ['rlhfruns.rlhf.dev.yaml', 'rlhfiterations.rlhf.dev.yaml'])
    server.loadCrdFile(join(root, 'deploy/crds', f));
  nats = await natsForTests();
  nc = await connectNats({ url: nats.url, name: 'rbac-test', logger });
});

after(async () => {
  await nc?.drain();
  await server?.stop();
  await nats?.stop();
  chart.dispose();
});

const key = (r: { group: string; resource: string; verb: string }) => `${r.group}|${r.resource}|${r.verb}`;

/** Every (group, resource, verb) the rendered Roles and ClusterRoles grant, with the kind granting it. */
function grantsOf(objs: K8sObject[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const o of objs.filter((x) => x.kind === 'Role' || x.kind === 'ClusterRole'))
    for (const rule of o.rules ?? [])
      for (const group of rule.apiGroups ?? [])
        for (const resource of rule.resources ?? [])
          for (const verb of rule.verbs) {
            const k = key({ group, resource, verb });
            out.set(k, (out.get(k) ?? new Set()).add(o.kind));
          }
  return out;
}

function runObject(name: string, namespace: string, placement: object = {}) {
  return {
    apiVersion: 'rlhf.dev/v1alpha1',
    kind: 'RLHFRun',
    metadata: { name, namespace },
    spec: {
      policy: { model: 'nats-obj://rlhf-models/sft' },
      judge: { type: 'gold', task: 'sentiment', lengthPenalty: 0 },
      prompts: { dataset: 'nats-obj://rlhf-data/prompts.jsonl', perIteration: 8 },
      iterations: 1,
      placement: {
        generate: { gpus: 0 },
        judge: { gpus: 0 },
        train: { gpus: 0 },
        evaluate: { gpus: 0 },
        ...placement,
      },
    },
  };
}

const find = (resource: string, ns: string, name: string) =>
  server.store.find(server.registry.byName(resource)!, ns, name) as
    | {
        metadata: { resourceVersion: string };
        spec: Record<string, unknown>;
        status?: Record<string, unknown>;
      }
    | undefined;

/** Replaces a run's spec through the in-process client (not an HTTP request of the controller). */
function setSpec(ns: string, name: string, edit: (spec: Record<string, unknown>) => void): void {
  const run = structuredClone(find(runs, ns, name)) as Record<string, unknown> & {
    spec: Record<string, unknown>;
  };
  edit(run.spec);
  server.client.update(runs, ns, run);
}

const readyMessage = (ns: string, name: string) =>
  ((find(runs, ns, name)?.status?.conditions ?? []) as { type: string; message: string }[]).find(
    (c) => c.type === 'Ready',
  )?.message ?? '';

async function deleteRun(ns: string, name: string): Promise<void> {
  server.client.delete(runs, ns, name);
  await until(() => !find(runs, ns, name), `${ns}/${name} to be deleted (finalizer removed)`, 20_000);
}

function start(o: { namespace?: string; leader: boolean }): Promise<RunningController> {
  return startController({
    kc: fakeKubeConfig(server, releaseNs),
    natsUrl: nats.url,
    ...(o.namespace ? { namespace: o.namespace } : {}),
    jobConfig: { image: 'img', natsUrl: nats.url },
    ...(o.leader
      ? { leaderElection: { namespace: releaseNs, name: 'rlhf-controller', identity: 'rbac-test' } }
      : {}),
    metricsPort: null,
    logger,
  });
}

test('namespaced: the Role and the leader-election Role grant exactly what the controller calls', async () => {
  server.requestLog.length = 0;
  const controller = await start({ namespace: releaseNs, leader: true });
  try {
    await until(() => controller.isLeader(), 'the Lease');
    // A run: finalizer, status, setup Job.
    server.client.create(runs, releaseNs, runObject('ok', releaseNs));
    await until(() => find('jobs.batch', releaseNs, 'ok-0-setup'), 'the setup Job');
    // Setup done, as its pod would record it: iteration 1 and its generate Job.
    const state = new RunState(await openStateKv(nc), { namespace: releaseNs, name: 'ok' });
    const at = new Date().toISOString();
    await state.putPlan({ policy: 'nats-obj://b/sft', prompts: 'nats-obj://b/p.jsonl', lengthPenalty: 0 });
    await state.putIteration({
      iteration: 0,
      policy: 'nats-obj://b/sft',
      proxyReward: 0.1,
      goldReward: 0.1,
      winRate: 0.5,
      kl: 0,
      meanLength: 5,
      grammaticalRate: 1,
      finishedAt: at,
    } as never);
    await state.finish({
      stage: 'evaluate',
      iteration: 0,
      startedAt: at,
      finishedAt: at,
      seconds: 0,
      result: {},
    });
    await until(() => find('jobs.batch', releaseNs, 'ok-1-generate'), 'the generate Job');
    // The Job gives up: the run fails; a changed spec deletes the Job to run the unit again.
    const job = structuredClone(find('jobs.batch', releaseNs, 'ok-1-generate')) as Record<string, unknown>;
    job.status = {
      failed: 1,
      conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }],
    };
    server.client.updateStatus('jobs.batch', releaseNs, job);
    await until(() => find(runs, releaseNs, 'ok')?.status?.phase === 'Failed', 'the run to fail');
    setSpec(releaseNs, 'ok', (s) => {
      s.maxRetries = 5;
    });
    await until(
      () => server.requestLog.some((r) => r.verb === 'delete' && r.resource === 'jobs'),
      'the failed Job to be deleted',
    );
    // Placement refusals: an Event each; going back to the first refusal patches its Event.
    server.client.create(runs, releaseNs, runObject('refused', releaseNs, { schedulerName: 'a' }));
    await until(() => readyMessage(releaseNs, 'refused').includes('"a" is not allowed'), 'the first refusal');
    setSpec(releaseNs, 'refused', (s) => {
      (s.placement as Record<string, unknown>).schedulerName = 'b';
    });
    await until(
      () => readyMessage(releaseNs, 'refused').includes('"b" is not allowed'),
      'the second refusal',
    );
    setSpec(releaseNs, 'refused', (s) => {
      (s.placement as Record<string, unknown>).schedulerName = 'a';
    });
    await until(
      () => server.requestLog.some((r) => r.verb === 'patch' && r.resource === 'events'),
      'the repeated Event to be patched',
    );
    assert.ok(!find('jobs.batch', releaseNs, 'refused-0-setup'), 'no Job for a refused placement');
    const events = server.store.list(server.registry.byName('events')!, releaseNs, {}).items as {
      reason: string;
      count: number;
      involvedObject: { name: string };
    }[];
    assert.deepEqual(events.map((e) => [e.involvedObject.name, e.reason, e.count]).sort(), [
      ['ok', 'StageFailed', 1],
      ['refused', 'InvalidSpec', 1],
      ['refused', 'InvalidSpec', 2],
    ]);
    // Deletion: the finalizer's work, then its removal.
    await deleteRun(releaseNs, 'ok');
    await deleteRun(releaseNs, 'refused');
  } finally {
    await controller.stop(); // releases the Lease
  }

  const log: RequestRecord[] = [...server.requestLog];
  const outside = log.filter((r) => r.namespace !== releaseNs);
  assert.deepEqual(outside, [], 'every request of a namespaced controller stays in its namespace');
  const used = new Set(log.map(key));
  const grants = grantsOf(chart.render());
  for (const k of Object.keys(notObserved))
    assert.ok(!used.has(k), `${k} is observed now: drop it from the list`);
  assert.deepEqual(
    [...grants.keys()].sort(),
    [...new Set([...used, ...Object.keys(notObserved)])].sort(),
    'the chart grants exactly what the controller uses',
  );
  for (const [k, kinds] of grants) assert.deepEqual([...kinds], ['Role'], `${k}: a namespaced Role suffices`);
});

test('clusterWide: cross-namespace lists and watches, granted by the ClusterRole', async () => {
  server.requestLog.length = 0;
  const controller = await start({ leader: false });
  try {
    server.client.create(runs, 'team-a', runObject('a', 'team-a'));
    await until(() => find('jobs.batch', 'team-a', 'a-0-setup'), 'the setup Job in team-a');
    server.client.create(
      runs,
      'team-b',
      runObject('b', 'team-b', { train: { gpus: 0, priorityClassName: 'x' } }),
    );
    await until(() => readyMessage('team-b', 'b').includes('priorityClassName'), 'the refusal in team-b');
    await until(
      () => server.requestLog.some((r) => r.resource === 'events' && r.namespace === 'team-b'),
      'the Event in team-b',
    );
  } finally {
    await controller.stop();
  }
  const clusterScope = [...new Set(server.requestLog.filter((r) => !r.namespace).map(key))].sort();
  assert.deepEqual(clusterScope, [
    'batch|jobs|list',
    'batch|jobs|watch',
    'rlhf.dev|rlhfiterations|list',
    'rlhf.dev|rlhfiterations|watch',
    'rlhf.dev|rlhfruns|list',
    'rlhf.dev|rlhfruns|watch',
  ]);
  const objs = chart.render({ controller: { clusterWide: true } });
  const grants = grantsOf(objs);
  for (const r of server.requestLog)
    assert.ok(grants.get(key(r))?.has('ClusterRole'), `${key(r)} in ${r.namespace ?? '(all)'}: not granted`);
  assert.ok(
    objs.some((o) => o.kind === 'ClusterRoleBinding' && o.roleRef.kind === 'ClusterRole'),
    'bound cluster-wide',
  );
});

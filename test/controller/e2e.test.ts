/**
 * The controller end to end on the fake API server: the CI-sized RLHFRun applied as a custom object, the
 * controller (in this process) creating RLHFIterations and stage Jobs, the fake kubelet running each Job's
 * pods as real `rlhf stage` processes over a real NATS. Mid-run the controller is stopped and a new one
 * started: it must find the Jobs it made and never create a second Job for a stage. Then deleting the run
 * removes its iterations, Jobs and artifacts. Also: a stage whose pods keep failing is retried up to
 * spec.maxRetries, then the run is Failed naming the reason; a spec the schema cannot fault but the run
 * cannot use gets Ready=False / InvalidSpec naming the field.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningController, startController } from '@rlhf/controller';
import { ArtifactRouter, ArtifactSandbox, connectNats, createLogger, openStateKv } from '@rlhf/platform';
import { runBase } from '@rlhf/workflow';
import { parse as parseYaml } from 'yaml';
import { FakeApiServer } from '../kube/fake-api-server/index.js';
import { FakeKubelet } from '../kube/fake-kubelet.js';
import { clientsFor, until } from '../kube/fixtures/clients.js';

const root = new URL('../../', import.meta.url).pathname;
const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const ns = 'default';
const suffix = Date.now().toString(36).slice(-5);
const ref = { group: 'rlhf.dev', version: 'v1alpha1', namespace: ns, plural: 'rlhfruns' };

let server: FakeApiServer;
let kubelet: FakeKubelet;
let c: ReturnType<typeof clientsFor>;
let controller: RunningController | null = null;
let nc: Awaited<ReturnType<typeof connectNats>>;

const logger = createLogger('controller-test', { level: 'warn' });
const start = () =>
  startController({
    kc: c.kc,
    natsUrl,
    namespace: ns,
    jobConfig: { image: 'ghcr.io/rlhf/platform:test', natsUrl, logLevel: 'warn' },
    leaderElection: { namespace: ns, name: 'rlhf-controller', identity: `test-${Math.random()}` },
    metricsPort: 0,
    logger,
  });

// biome-ignore lint/suspicious/noExplicitAny: the test reads API objects as loose JSON
type Json = Record<string, any>;
const getRun = async (name: string) =>
  (await c.custom.getNamespacedCustomObject({ ...ref, name }).catch(() => null)) as Json | null;
const condition = (run: Json | null, type: string) =>
  (run?.status?.conditions as Json[] | undefined)?.find((x) => x.type === type);

async function deleteRun(name: string): Promise<void> {
  await c.custom.deleteNamespacedCustomObject({ ...ref, name });
  await until(async () => (await getRun(name)) === null, `${name} to be deleted (finalizer removed)`, 30_000);
}

function ciRun(name: string): Json {
  const doc = parseYaml(readFileSync(join(root, 'examples/ci-small.yaml'), 'utf8')) as Json;
  doc.metadata = { name, namespace: ns };
  doc.spec.placement = {
    generate: { gpus: 0 },
    judge: { gpus: 0 },
    train: { gpus: 0 },
    evaluate: { gpus: 0 },
  };
  return doc;
}

before(async () => {
  server = await FakeApiServer.start();
  for (const f of ['rlhfruns.rlhf.dev.yaml', 'rlhfiterations.rlhf.dev.yaml'])
    server.loadCrdFile(join(root, 'deploy/crds', f));
  kubelet = new FakeKubelet(server, {
    logDir: mkdtempSync(join(tmpdir(), 'rlhf-e2e-pods-')),
    baseEnv: { ...process.env, LOG_LEVEL: 'warn' },
  }).start();
  c = clientsFor(server, ns);
  nc = await connectNats({ url: natsUrl, name: 'controller-e2e-test', logger });
  controller = await start();
});

after(async () => {
  await controller?.stop();
  await kubelet.stop();
  await server.stop();
  await nc.drain();
});

describe('controller on the fake API server', () => {
  test('the CI-sized run: two iterations through stage Jobs, a controller restart, then deletion', async () => {
    const name = `e2e-${suffix}`;
    await c.custom.createNamespacedCustomObject({ ...ref, body: ciRun(name) });

    // Restart the controller while iteration 1 is in progress.
    await until(
      async () => {
        const r = await getRun(name);
        return r?.status?.iteration === 1 && ['judge', 'pair', 'train'].includes(r.status.stage);
      },
      'iteration 1 to reach judge',
      180_000,
    );
    await controller?.stop();
    controller = await start();

    const done = await until(
      async () => {
        const r = await getRun(name);
        if (condition(r, 'Failed')?.status === 'True') throw new Error(condition(r, 'Failed')?.message);
        return r?.status?.phase === 'Succeeded' ? r : null;
      },
      'the run to succeed',
      300_000,
    );
    const st = done.status as Json;
    assert.equal(st.progress, '2/2');
    assert.deepEqual(
      (st.iterations as Json[]).map((m) => m.iteration),
      [0, 1, 2],
    );
    for (const m of st.iterations as Json[]) {
      assert.ok(Number.isFinite(m.proxyReward), `iteration ${m.iteration} proxyReward`);
      assert.ok(m.winRate >= 0 && m.winRate <= 1, `iteration ${m.iteration} winRate`);
      assert.match(m.policy, /^nats-obj:\/\//);
    }
    assert.equal(st.latest.iteration, 2);
    assert.ok(Number.isFinite(st.iterations[2].kl));
    assert.ok(st.iterations[1].pairs > 0);
    assert.equal(condition(done, 'Succeeded')?.status, 'True');
    assert.equal(condition(done, 'Ready')?.status, 'True');
    assert.equal(condition(done, 'Succeeded')?.observedGeneration, done.metadata.generation);
    assert.ok(Number.isInteger(st.bestIteration));
    assert.ok(done.metadata.finalizers.includes('rlhf.dev/artifacts'));

    // One RLHFIteration per iteration, each Succeeded with its metrics and five stages.
    const its = (await c.custom.listNamespacedCustomObject({ ...ref, plural: 'rlhfiterations' })) as Json;
    const mine = (its.items as Json[]).filter((i) => i.spec.run === name);
    assert.deepEqual(mine.map((i) => i.spec.iteration).sort(), [1, 2]);
    for (const it of mine) {
      assert.equal(it.status.phase, 'Succeeded');
      assert.deepEqual(
        (it.status.stages as Json[]).map((s) => s.state),
        ['Succeeded', 'Succeeded', 'Succeeded', 'Succeeded', 'Succeeded'],
      );
      assert.equal(it.status.metrics.iteration, it.spec.iteration);
      assert.equal(it.metadata.ownerReferences[0].name, name);
    }

    // Exactly one Job per unit (setup + 5 per iteration), each created once despite the restart.
    const created = server.events.filter(
      (e) => e.resource === 'jobs.batch' && e.type === 'ADDED' && e.name.startsWith(`${name}-`),
    );
    const names = created.map((e) => e.name);
    assert.equal(names.length, 11, names.join(', '));
    assert.equal(new Set(names).size, 11);
    const jobs = await c.batch.listNamespacedJob({ namespace: ns, labelSelector: `rlhf.dev/run=${name}` });
    const gen = jobs.items.find((j) => j.metadata?.name === `${name}-1-generate`);
    assert.deepEqual(gen?.spec?.template.spec?.containers[0]?.args, [
      'stage',
      'generate',
      '--iteration',
      '1',
    ]);
    assert.equal(gen?.metadata?.ownerReferences?.[0]?.kind, 'RLHFIteration');

    // The summary was stored with the run's artifacts.
    const store = new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
    const base = runBase({ namespace: ns, name });
    const summary = JSON.parse(new TextDecoder().decode(await store.get(`${base}/summary.json`)));
    assert.equal(summary.iterations.length, 2);
    assert.ok((await store.list(`${base}/`)).length > 10);

    // Probes and metrics of the controller that finished the run.
    const probe = `http://127.0.0.1:${controller?.metricsPort}`;
    assert.equal((await fetch(`${probe}/healthz`)).status, 200);
    assert.equal((await fetch(`${probe}/readyz`)).status, 200);
    const metrics = await (await fetch(`${probe}/metrics`)).text();
    assert.match(metrics, /rlhf_controller_reconcile_total\{result="done"[^}]*\} [1-9]/);
    assert.match(metrics, /rlhf_controller_is_leader\{[^}]*\} 1/);

    // Deleting the run removes its iterations, Jobs (by ownerReference) and artifacts (the finalizer).
    await c.custom.deleteNamespacedCustomObject({ ...ref, name, propagationPolicy: 'Foreground' });
    await until(async () => (await getRun(name)) === null, 'the run to be deleted', 60_000);
    await until(
      async () => {
        const left = await c.batch.listNamespacedJob({
          namespace: ns,
          labelSelector: `rlhf.dev/run=${name}`,
        });
        const itsLeft = (await c.custom.listNamespacedCustomObject({
          ...ref,
          plural: 'rlhfiterations',
        })) as Json;
        return left.items.length === 0 && (itsLeft.items as Json[]).every((i) => i.spec.run !== name);
      },
      'iterations and Jobs to be deleted',
      30_000,
    );
    assert.deepEqual(await store.list(`${base}/`), []);
    const kv = await openStateKv(nc);
    const keys: string[] = [];
    for await (const k of await kv.keys(`${ns}.${name}.>`)) keys.push(k);
    assert.deepEqual(keys, []);
  });

  test('a second replica waits as a standby while the first holds the Lease', async () => {
    const standby = await start();
    try {
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(controller?.isLeader(), true);
      assert.equal(standby.isLeader(), false);
      assert.equal(standby.stats().reconciles, 0);
      assert.equal((await fetch(`http://127.0.0.1:${standby.metricsPort}/readyz`)).status, 200);
    } finally {
      await standby.stop();
    }
  });

  test('a stage whose pods fail is retried up to spec.maxRetries, then the run is Failed with the reason', async () => {
    const name = `fail-${suffix}`;
    const run = ciRun(name);
    delete run.spec.setup;
    run.spec.policy = { model: 'nats-obj://rlhf-artifacts/no/such/model' };
    run.spec.prompts.dataset = 'nats-obj://rlhf-artifacts/no/such/prompts.jsonl';
    run.spec.judge = { type: 'gold', task: 'sentiment', lengthPenalty: 0 };
    run.spec.maxRetries = 1;
    await c.custom.createNamespacedCustomObject({ ...ref, body: run });
    const failed = await until(
      async () => {
        const r = await getRun(name);
        return r?.status?.phase === 'Failed' ? r : null;
      },
      'the run to fail',
      120_000,
    );
    const cond = condition(failed, 'Failed');
    assert.equal(cond?.status, 'True');
    assert.equal(cond?.reason, 'StageFailed');
    assert.match(cond?.message, /setup failed after 2 attempt\(s\)/);
    assert.match(cond?.message, /spec\.policy\.model: model \S*no\/such\/model\S* does not exist/);
    const pods = await c.core.listNamespacedPod({ namespace: ns, labelSelector: `rlhf.dev/run=${name}` });
    assert.equal(pods.items.length, 2, 'one pod plus one retry');
    assert.equal(failed.status.stage, 'setup');
    await deleteRun(name);
  });

  test('a spec the CRD schema accepts but the run cannot use sets Ready=False, InvalidSpec, naming the field', async () => {
    const name = `invalid-${suffix}`;
    const run = ciRun(name);
    run.spec.judge = { type: 'preference', model: 'nats-obj://rlhf-artifacts/pm', lengthPenalty: 'auto' };
    await c.custom.createNamespacedCustomObject({ ...ref, body: run });
    const r = await until(
      async () => {
        const x = await getRun(name);
        return condition(x, 'Ready')?.reason === 'InvalidSpec' ? x : null;
      },
      'InvalidSpec',
      30_000,
    );
    assert.equal(condition(r, 'Ready')?.status, 'False');
    assert.match(condition(r, 'Ready')?.message, /spec\.judge\.lengthPenalty/);
    const jobs = await c.batch.listNamespacedJob({ namespace: ns, labelSelector: `rlhf.dev/run=${name}` });
    assert.equal(jobs.items.length, 0);
    await deleteRun(name);
  });
});

/**
 * Opt-in: the CI-sized run on a real cluster (kind, k3d, or any cluster with the chart installed), CPU only.
 * It needs KUBECONFIG and the chart (`helm install rlhf charts/rlhf ...`, see docs/KUBERNETES.md); it
 * applies an RLHFRun, waits for the controller to finish two iterations through stage Jobs, checks the
 * status and the RLHFIterations, then deletes the run and checks that its iterations and Jobs are gone.
 *
 *   KUBECONFIG=~/.kube/config npm run test:cluster
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ApiextensionsV1Api, BatchV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';

if (!process.env.KUBECONFIG) {
  console.error('KUBECONFIG is not set: this suite runs against a real cluster (see docs/KUBERNETES.md)');
  process.exit(2);
}

const root = new URL('../../', import.meta.url).pathname;
const ns = process.env.RLHF_TEST_NAMESPACE ?? 'default';
const timeoutMs = Number(process.env.RLHF_TEST_TIMEOUT_MS ?? 30 * 60_000);
const kc = new KubeConfig();
kc.loadFromDefault();
const custom = kc.makeApiClient(CustomObjectsApi);
const batch = kc.makeApiClient(BatchV1Api);
const ref = { group: 'rlhf.dev', version: 'v1alpha1', namespace: ns, plural: 'rlhfruns' };

type Json = Record<string, unknown> & { status?: Record<string, unknown> };
const conditions = (r: Json | null) => (r?.status?.conditions ?? []) as Array<Record<string, string>>;

async function waitFor<T>(probe: () => Promise<T | null>, what: string, limitMs: number): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

const getRun = async (name: string) =>
  (await custom.getNamespacedCustomObject({ ...ref, name }).catch(() => null)) as Json | null;

test('the CI-sized RLHFRun finishes on the cluster and deleting it removes its iterations and Jobs', async () => {
  await kc
    .makeApiClient(ApiextensionsV1Api)
    .readCustomResourceDefinition({ name: 'rlhfruns.rlhf.dev' })
    .catch(() => {
      throw new Error('the RLHFRun CRD is not installed: helm install rlhf charts/rlhf (docs/KUBERNETES.md)');
    });
  const name = `cluster-e2e-${Date.now().toString(36).slice(-5)}`;
  const run = parseYaml(readFileSync(join(root, 'examples/ci-small.yaml'), 'utf8')) as Json & {
    spec: Record<string, unknown>;
  };
  run.metadata = { name, namespace: ns };
  run.spec.placement = {
    generate: { gpus: 0 },
    judge: { gpus: 0 },
    train: { gpus: 0 },
    evaluate: { gpus: 0 },
  };
  await custom.createNamespacedCustomObject({ ...ref, body: run });

  const done = await waitFor(
    async () => {
      const r = await getRun(name);
      const failed = conditions(r).find((c) => c.type === 'Failed' && c.status === 'True');
      if (failed) throw new Error(`the run failed: ${failed.message}`);
      return r?.status?.phase === 'Succeeded' ? r : null;
    },
    'the run to succeed',
    timeoutMs,
  );
  const iterations = done.status?.iterations as Array<Record<string, number>>;
  assert.deepEqual(
    iterations.map((m) => m.iteration),
    [0, 1, 2],
  );
  for (const m of iterations) assert.ok(Number.isFinite(m.proxyReward));
  assert.equal(done.status?.progress, '2/2');

  const jobs = await batch.listNamespacedJob({ namespace: ns, labelSelector: `rlhf.dev/run=${name}` });
  assert.equal(jobs.items.length, 11, 'setup plus five stages per iteration');

  await custom.deleteNamespacedCustomObject({ ...ref, name, propagationPolicy: 'Foreground' });
  await waitFor(async () => ((await getRun(name)) === null ? true : null), 'the run to be deleted', 120_000);
  await waitFor(
    async () => {
      const left = await batch.listNamespacedJob({ namespace: ns, labelSelector: `rlhf.dev/run=${name}` });
      return left.items.length === 0 ? true : null;
    },
    'the Jobs to be deleted',
    120_000,
  );
});

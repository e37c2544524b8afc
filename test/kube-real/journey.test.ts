/**
 * The user's journey on the real control plane, with the tools users have: `helm install` of charts/rlhf
 * (NATS subchart off, this test's nats-server configured through values), the controller Deployment's pod run
 * by the node agent as the local `rlhf` CLI under the chart's own ServiceAccount, RBAC and leader-election
 * Lease; `kubectl apply -f` of the CI-sized RLHFRun, `kubectl get rlhfruns` and its printer columns, a
 * controller restart mid-run (`kubectl delete pod`: the new pod adopts the run and creates no second Job for
 * any stage), `kubectl wait --for=condition=Succeeded`, `kubectl describe` with conditions and events,
 * `kubectl logs`, `kubectl delete rlhfrun` cleaning up through the finalizer and garbage collection, and
 * `helm uninstall`.
 *
 *   node scripts/run-tests.mjs test/kube-real/journey
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, type LocalNatsServer, startLocalNatsServer } from '@rlhf/platform';
import { parse as parseYaml, stringify } from 'yaml';
import { type ControlPlane, startControlPlane } from '../helpers/control-plane.js';
import { eventually } from '../helpers/eventually.js';
import { type KubeTools, kubeTools } from './kube-tools.js';
import { type NodeAgent, rlhfCli, startNodeAgent } from './node-agent/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ns = 'rlhf-system';
const release = 'rlhf';
// The platform image as the chart names it; the node agent runs it as the repo's CLI.
const imageRepository = 'ghcr.io/rlhf-platform/rlhf';
const imageTag = 'journey';
const controllerSelector = `app.kubernetes.io/instance=${release},app.kubernetes.io/component=controller`;
const runName = 'journey';

// biome-ignore lint/suspicious/noExplicitAny: kubectl's JSON is read loosely
type Json = Record<string, any>;

let cp: ControlPlane;
let nats: LocalNatsServer;
let agent: NodeAgent;
let tools: KubeTools;
let work: string;

/** Polls once a second: each probe runs kubectl. */
const waitFor = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number) =>
  eventually(what, probe, timeoutMs, 1000);

const getJson = async (...args: string[]): Promise<Json> =>
  JSON.parse(await tools.kubectlOk(['-n', ns, 'get', ...args, '-o', 'json']));

const getRun = async (): Promise<Json | undefined> => {
  const r = await tools.kubectl(['-n', ns, 'get', 'rlhfrun', runName, '-o', 'json']);
  return r.status === 0 ? (JSON.parse(r.stdout) as Json) : undefined;
};

const condition = (obj: Json | undefined, type: string): Json | undefined =>
  (obj?.status?.conditions as Json[] | undefined)?.find((c) => c.type === type);

/** Lines of the controller pods' logs that report a call the API server refused (403, forbidden). */
function refusedCalls(): string[] {
  const dir = join(work, 'pod-logs');
  return readdirSync(dir)
    .filter((f) => f.startsWith(`${ns}_${release}-controller-`))
    .flatMap((f) =>
      readFileSync(join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => /forbidden|\b403\b/i.test(l))
        .map((l) => `${f}: ${l.slice(0, 600)}`),
    );
}

/**
 * Fails at once when the run has failed, naming why, or when the controller was refused a call (the chart's
 * RBAC lacks something: the run would stall rather than fail), instead of waiting out a timeout.
 */
function assertNotFailed(run: Json | undefined) {
  const failed = condition(run, 'Failed');
  if (failed?.status === 'True') assert.fail(`the run failed: ${failed.message}`);
  const refused = refusedCalls();
  if (refused.length) assert.fail(`the API server refused the controller:\n${refused.join('\n')}`);
}

const controllerPods = async () =>
  ((await getJson('pods', '-l', controllerSelector)).items as Json[]).filter(
    (p) => !p.metadata.deletionTimestamp,
  );

/** Jobs of the run, by `<iteration>/<stage>` -> uids (more than one uid is a second Job for a stage). */
async function jobsByStage(): Promise<Map<string, string[]>> {
  const jobs = (await getJson('jobs', '-l', `rlhf.dev/run=${runName}`)).items as Json[];
  const out = new Map<string, string[]>();
  for (const j of jobs) {
    const key = `${j.metadata.labels['rlhf.dev/iteration']}/${j.metadata.labels['rlhf.dev/stage']}`;
    out.set(key, [...(out.get(key) ?? []), j.metadata.uid as string]);
  }
  return out;
}

/** The CI-sized run as a cluster takes it: every placement group on CPU. */
function ciRun(name: string): Json {
  const doc = parseYaml(readFileSync(join(root, 'examples/ci-small.yaml'), 'utf8')) as Json;
  doc.metadata = { name, namespace: ns };
  doc.spec.iterations = 2;
  doc.spec.placement = {
    generate: { gpus: 0 },
    judge: { gpus: 0 },
    train: { gpus: 0 },
    evaluate: { gpus: 0 },
  };
  return doc;
}

/**
 * `kubectl get` in its table form: the header's column names and each row's cells, cut at the columns'
 * start offsets in the header (kubectl aligns every cell there; an empty cell is blanks).
 */
function table(text: string): { header: string[]; rows: string[][] } {
  const [head = '', ...lines] = text.replace(/\s+$/, '').split('\n');
  const starts = [...head.matchAll(/\S+(?: \S+)*/g)].map((m) => m.index ?? 0);
  const cut = (line: string) =>
    starts.map((start, i) => line.slice(start, starts[i + 1] ?? line.length).trim());
  return { header: cut(head), rows: lines.map(cut) };
}

/** What a failing step shows: the pods and events of the release namespace, pod logs, component log tails. */
async function diagnostics(): Promise<string> {
  const tail = (file: string, lines = 40) => {
    try {
      return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };
  const kubectlText = async (args: string[]) => {
    const r = await tools.kubectl(args).catch((e: Error) => ({ stdout: '', stderr: e.message }));
    return `$ kubectl ${args.join(' ')}\n${r.stdout}${r.stderr}`;
  };
  const podLogs = readdirSync(join(work, 'pod-logs')).map(
    (f) => `--- pod log ${f}\n${tail(join(work, 'pod-logs', f), 30)}`,
  );
  return [
    await kubectlText(['-n', ns, 'get', 'pods,jobs,rlhfruns,leases', '-o', 'wide']),
    await kubectlText(['-n', ns, 'get', 'events', '--sort-by=.lastTimestamp']),
    `node agent errors: ${agent?.errors().join('\n') || '(none)'}`,
    ...podLogs,
    ...Object.entries(cp?.logs ?? {})
      .filter(([name]) => name !== 'etcd')
      .map(([name, file]) => `--- ${name}\n${tail(file, 15)}`),
  ].join('\n');
}

// The steps build on each other: after one fails, the rest fail at once instead of waiting out their timeouts.
let failedStep: string | undefined;
function step(name: string, body: () => Promise<void>) {
  test(name, async (t) => {
    if (failedStep) assert.fail(`not attempted: an earlier step failed (${failedStep})`);
    try {
      await body();
    } catch (e) {
      failedStep = name;
      t.diagnostic(await diagnostics());
      throw e;
    }
  });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'rlhf-journey-'));
  // OwnerReferencesPermissionEnforcement (on in OpenShift and other hardened clusters) checks that the
  // controller may set blockOwnerDeletion on what it owns: the chart's finalizers rule is for it.
  cp = await startControlPlane({ admissionPlugins: ['OwnerReferencesPermissionEnforcement'] });
  nats = await startLocalNatsServer();
  agent = await startNodeAgent(cp, {
    // Room for the controller and one stage pod at a time, as a small CPU node.
    cpu: '16',
    memory: '64Gi',
    entrypoints: { [`${imageRepository}:${imageTag}`]: rlhfCli },
    baseEnv: { ...process.env, LOG_LEVEL: 'warn' },
    logDir: join(work, 'pod-logs'),
  });
  tools = kubeTools(cp.kubeconfig);
});

after(async () => {
  await agent?.stop();
  await nats?.stop();
  await cp?.stop();
  tools?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the user journey: helm install, kubectl apply, wait, describe, delete, helm uninstall', () => {
  step('helm install: the controller runs under the chart ServiceAccount and takes the Lease', async () => {
    const values = {
      image: { repository: imageRepository, tag: imageTag, pullPolicy: 'IfNotPresent' },
      // This test's nats-server: the pods are processes of this machine, so loopback reaches it.
      nats: { enabled: false, external: { url: nats.url } },
      logLevel: 'warn',
      // Pods share this machine's ports: a free one instead of the chart's 9090.
      controller: { metricsPort: await freePort() },
      // The run needs only the controller and its stage Jobs; the four model services are not asked.
      services: {
        policyGenerator: { enabled: false },
        rewardModel: { enabled: false },
        preferenceModel: { enabled: false },
        dpoTrainer: { enabled: false },
      },
    };
    const valuesFile = join(work, 'values.yaml');
    writeFileSync(valuesFile, stringify(values));
    await tools.helmOk(
      [
        'install',
        release,
        join(root, 'charts/rlhf'),
        '-n',
        ns,
        '--create-namespace',
        '-f',
        valuesFile,
        '--wait',
        '--timeout',
        '5m',
      ],
      { timeoutMs: 330_000 },
    );
    const status = await tools.helmOk(['status', release, '-n', ns]);
    assert.match(status, /STATUS: deployed/);

    const [pod] = await controllerPods();
    assert.ok(pod, 'a controller pod');
    assert.equal(pod.spec.serviceAccountName, `${release}-controller`);
    assert.equal(pod.status.phase, 'Running');
    assert.ok(
      (pod.status.conditions as Json[]).some((c) => c.type === 'Ready' && c.status === 'True'),
      'Ready by its /readyz probe',
    );
    const holder = await waitFor(
      'the controller to hold the Lease',
      async () => {
        const r = await tools.kubectl(['-n', ns, 'get', 'lease', 'rlhf-controller', '-o', 'json']);
        if (r.status !== 0) return undefined;
        return (JSON.parse(r.stdout) as Json).spec?.holderIdentity as string | undefined;
      },
      60_000,
    );
    assert.equal(holder, pod.metadata.name, 'POD_NAME is the leader-election identity');
  });

  step(
    'kubectl apply -f the CI-sized run; kubectl get rlhfruns shows it Running with its stage',
    async () => {
      const manifest = join(work, 'run.yaml');
      writeFileSync(manifest, stringify(ciRun(runName)));
      const applied = await tools.kubectlOk(['apply', '-f', manifest]);
      assert.match(applied, new RegExp(`rlhfrun.rlhf.dev/${runName} created`));

      await waitFor(
        'the run to start its setup Job',
        async () => {
          const run = await getRun();
          assertNotFailed(run);
          return run?.status?.phase === 'Running' && run.status.stage ? true : undefined;
        },
        120_000,
      );
      const { header, rows } = table(await tools.kubectlOk(['-n', ns, 'get', 'rlhfruns']));
      assert.deepEqual(header, ['NAME', 'PHASE', 'ITERATION', 'STAGE', 'REWARD', 'WIN RATE', 'AGE']);
      const row = rows.find((r) => r[0] === runName);
      assert.ok(row, `${runName} in kubectl get rlhfruns`);
      assert.equal(row[1], 'Running');
      assert.match(row[2] ?? '', /^[0-2]\/2$/);
      assert.ok(
        ['setup', 'generate', 'judge', 'pair', 'train', 'evaluate'].includes(row[3] ?? ''),
        `stage column: ${row[3]}`,
      );
    },
  );

  let jobsBeforeRestart: Map<string, string[]>;

  step('a controller restart mid-run: the new pod adopts the run and creates no second Job', async () => {
    await waitFor(
      'iteration 1 to reach judge, pair or train',
      async () => {
        const run = await getRun();
        assertNotFailed(run);
        return run?.status?.iteration === 1 && ['judge', 'pair', 'train'].includes(run.status.stage)
          ? true
          : undefined;
      },
      600_000,
    );
    jobsBeforeRestart = await jobsByStage();
    const [old] = await controllerPods();
    assert.ok(old);
    await tools.kubectlOk(['-n', ns, 'delete', 'pod', '-l', controllerSelector, '--wait=true']);
    const fresh = await waitFor(
      'a new controller pod to be Ready',
      async () => {
        const pods = await controllerPods();
        const p = pods.find((x) => x.metadata.name !== old.metadata.name);
        const ready = (p?.status?.conditions as Json[] | undefined)?.some(
          (c) => c.type === 'Ready' && c.status === 'True',
        );
        return ready ? p : undefined;
      },
      180_000,
    );
    await waitFor(
      'the new pod to hold the Lease',
      async () => {
        const lease = await getJson('lease', 'rlhf-controller');
        return lease.spec?.holderIdentity === fresh.metadata.name ? true : undefined;
      },
      120_000,
    );
    // Every Job the old pod made is still the same object (adopted, not deleted and made again).
    const now = await jobsByStage();
    for (const [stage, uids] of jobsBeforeRestart) assert.deepEqual(now.get(stage), uids, `Job of ${stage}`);
  });

  step('kubectl wait --for=condition=Succeeded; one Job per stage; printer columns filled', async () => {
    const waited = await tools.kubectl(
      ['-n', ns, 'wait', '--for=condition=Succeeded', `rlhfrun/${runName}`, '--timeout=600s'],
      { timeoutMs: 620_000 },
    );
    if (waited.status !== 0) {
      assertNotFailed(await getRun());
      assert.fail(`kubectl wait exited ${waited.status}: ${waited.stderr}`);
    }
    assert.match(waited.stdout, new RegExp(`rlhfrun.rlhf.dev/${runName} condition met`));

    const jobs = await jobsByStage();
    const expected = [
      '0/setup',
      ...[1, 2].flatMap((t) => ['generate', 'judge', 'pair', 'train', 'evaluate'].map((s) => `${t}/${s}`)),
    ];
    assert.deepEqual([...jobs.keys()].sort(), expected.sort());
    for (const [stage, uids] of jobs) assert.equal(uids.length, 1, `one Job for ${stage}`);
    for (const [stage, uids] of jobsBeforeRestart) assert.deepEqual(jobs.get(stage), uids, `Job of ${stage}`);

    const run = (await getRun()) as Json;
    assert.equal(run.status.phase, 'Succeeded');
    assert.equal(run.status.progress, '2/2');
    const { header, rows } = table(await tools.kubectlOk(['-n', ns, 'get', 'rlhfruns', '-o', 'wide']));
    assert.deepEqual(header, ['NAME', 'PHASE', 'ITERATION', 'STAGE', 'REWARD', 'WIN RATE', 'BEST', 'AGE']);
    const row = rows.find((r) => r[0] === runName);
    assert.ok(row);
    assert.equal(row[1], 'Succeeded');
    assert.equal(row[2], '2/2');
    // No stage in progress: an empty cell.
    assert.equal(row[3], '');
    assert.equal(Number(row[4]), run.status.latest.proxyReward);
    assert.equal(Number(row[5]), run.status.latest.winRate);
    assert.ok(Number.isFinite(Number(row[4])) && Number.isFinite(Number(row[5])), row.join(' | '));
    assert.equal(Number(row[6]), run.status.bestIteration);

    const iterations = (await getJson('rlhfiterations', '-l', `rlhf.dev/run=${runName}`)).items as Json[];
    assert.deepEqual(iterations.map((i) => i.spec.iteration).sort(), [1, 2]);
  });

  step(
    'kubectl describe shows the conditions and the Succeeded event; kubectl logs reads a stage pod',
    async () => {
      const described = await tools.kubectlOk(['-n', ns, 'describe', 'rlhfrun', runName]);
      assert.match(described, /Conditions:/);
      assert.match(described, /Reason:\s+AllIterationsDone/);
      assert.match(described, /Type:\s+Succeeded/);
      assert.match(described, /Normal\s+Succeeded\s+.*all 2 iterations done, best iteration \d/);

      const log = await tools.kubectlOk(['-n', ns, 'logs', `job/${runName}-0-setup`]);
      assert.ok(log.trim().length > 0, 'the setup pod logged something');
    },
  );

  step('kubectl describe of a run the controller refuses shows the InvalidSpec event', async () => {
    const bad = ciRun(`${runName}-invalid`);
    // The schema accepts it; the controller cannot use it (lengthPenalty auto needs a reward judge).
    bad.spec.judge = { type: 'preference', model: 'nats-obj://rlhf-artifacts/pm', lengthPenalty: 'auto' };
    const manifest = join(work, 'invalid.yaml');
    writeFileSync(manifest, stringify(bad));
    await tools.kubectlOk(['apply', '-f', manifest]);
    await tools.kubectlOk(
      ['-n', ns, 'wait', '--for=condition=Ready=false', `rlhfrun/${runName}-invalid`, '--timeout=120s'],
      { timeoutMs: 130_000 },
    );
    const described = await waitFor(
      'the InvalidSpec event',
      async () => {
        const d = await tools.kubectlOk(['-n', ns, 'describe', 'rlhfrun', `${runName}-invalid`]);
        return /Warning\s+InvalidSpec/.test(d) ? d : undefined;
      },
      60_000,
    );
    assert.match(described, /spec\.judge\.lengthPenalty/);
    await tools.kubectlOk(['-n', ns, 'delete', 'rlhfrun', `${runName}-invalid`, '--timeout=120s']);
  });

  step(
    'kubectl delete rlhfrun: the finalizer and garbage collection remove iterations, Jobs and pods',
    async () => {
      const run = (await getRun()) as Json;
      assert.ok((run.metadata.finalizers as string[]).length > 0, 'the controller put its finalizer on');
      await tools.kubectlOk(['-n', ns, 'delete', 'rlhfrun', runName, '--timeout=180s'], {
        timeoutMs: 200_000,
      });
      assert.equal(await getRun(), undefined);
      const left = async () =>
        Promise.all(
          ['rlhfiterations', 'jobs', 'pods'].map(
            async (kind) => ((await getJson(kind, '-l', `rlhf.dev/run=${runName}`)).items as Json[]).length,
          ),
        );
      await waitFor(
        'garbage collection of the iterations, Jobs and pods',
        async () => ((await left()).every((n) => n === 0) ? true : undefined),
        180_000,
      );
    },
  );

  step('no call of the controller was refused: the chart RBAC grants what it does', async () => {
    const logs = readdirSync(join(work, 'pod-logs')).filter((f) =>
      f.startsWith(`${ns}_${release}-controller-`),
    );
    assert.ok(logs.length >= 2, `the logs of both controller pods: ${logs.join(', ')}`);
    assert.deepEqual(refusedCalls(), []);
  });

  step('helm uninstall removes the release; the node runs nothing of it any more', async () => {
    await tools.helmOk(['uninstall', release, '-n', ns, '--wait', '--timeout', '3m'], { timeoutMs: 200_000 });
    await waitFor(
      'the controller pod to go',
      async () => ((await controllerPods()).length === 0 ? true : undefined),
      120_000,
    );
    await waitFor(
      'the node agent to stop every process of the release',
      async () => (agent.runningPods().some((p) => p.namespace === ns) ? undefined : true),
      60_000,
    );
    const list = await tools.helmOk(['list', '-n', ns, '-q']);
    assert.equal(list.trim(), '');
  });
});

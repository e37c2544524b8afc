/**
 * The API servers the controller benchmark runs against: the fake one of test/kube, or a real kube-apiserver
 * from test/helpers/control-plane.ts. Both are reached the same way (client-node over HTTP, runs watched
 * through a Watch), and the controller's requests are counted on its side, by the KubeConfig it is given,
 * so the two report the same figures for the same work.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { type ControlPlane, startControlPlane } from '../helpers/control-plane.js';
import { FakeApiServer, fakeKubeConfig } from '../kube/fake-api-server/index.js';

/** A KubeConfig that counts the HTTP requests made through it: typed API calls and watches. */
export class CountingKubeConfig extends KubeConfig {
  requests = 0;

  override async applySecurityAuthentication(
    context: Parameters<KubeConfig['applySecurityAuthentication']>[0],
  ): Promise<void> {
    this.requests++;
    await super.applySecurityAuthentication(context);
  }

  // Watch (and so every informer) asks for its fetch options once per watch request.
  override async applyToFetchOptions(
    opts: Parameters<KubeConfig['applyToFetchOptions']>[0],
  ): ReturnType<KubeConfig['applyToFetchOptions']> {
    this.requests++;
    return super.applyToFetchOptions(opts);
  }
}

export interface BenchTarget {
  name: string;
  /** What the server is, for the printed header. */
  describe: string;
  /** The benchmark's own client (creates and watches runs); not counted. */
  kc: KubeConfig;
  /** A fresh counting KubeConfig for one round's controller. */
  controllerKc(): CountingKubeConfig;
  /** Makes a namespace usable (the real server refuses objects in a namespace that does not exist). */
  prepareNamespace(ns: string): Promise<void>;
  /** Seconds from launch to serving the CRDs. */
  startSeconds: number;
  stop(): Promise<void>;
}

const crdFiles = ['rlhfruns.rlhf.dev.yaml', 'rlhfiterations.rlhf.dev.yaml'];

export async function fakeTarget(root: string): Promise<BenchTarget> {
  const t0 = performance.now();
  const server = await FakeApiServer.start();
  for (const f of crdFiles) server.loadCrdFile(join(root, 'deploy/crds', f));
  const startSeconds = (performance.now() - t0) / 1000;
  const kc = fakeKubeConfig(server);
  return {
    name: 'fake',
    describe: 'the fake API server of test/kube (HTTP, in this process)',
    kc,
    controllerKc: () => {
      const counting = new CountingKubeConfig();
      counting.loadFromString(kc.exportConfig());
      return counting;
    },
    prepareNamespace: async () => {},
    startSeconds,
    stop: () => server.stop(),
  };
}

/**
 * A real control plane. With `kubeControllers` false only etcd and kube-apiserver run, so the workload is the
 * fake server's (Jobs are created and nothing acts on them); with it true the controller manager's Job
 * controller creates each setup Job's pod and the scheduler marks it Unschedulable (there is no node), and
 * the Job status updates that follow wake the controller again.
 *
 * The controller runs as its own user bound to cluster-admin, not as a member of system:masters: RBAC
 * authorizes each request and API Priority and Fairness queues it (global-default), as for a deployed
 * controller; the benchmark's own client is the exempt admin.
 */
export async function realTarget(root: string, kubeControllers: boolean): Promise<BenchTarget> {
  const t0 = performance.now();
  const cp: ControlPlane = await startControlPlane({ controllers: kubeControllers });
  const fail = (what: string, res: { status: number; body: unknown }) => {
    throw new Error(`${what}: the API server answered ${res.status} ${JSON.stringify(res.body)}`);
  };
  for (const f of crdFiles) {
    const crd = parseYaml(readFileSync(join(root, 'deploy/crds', f), 'utf8'));
    const res = await cp.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    if (res.status !== 201) fail(`creating the CRD of ${f}`, res);
  }
  const deadline = Date.now() + 60_000;
  while ((await cp.request('GET', '/apis/rlhf.dev/v1alpha1/rlhfiterations')).status !== 200) {
    if (Date.now() > deadline) throw new Error('the rlhf.dev CRDs were never served');
    await new Promise((r) => setTimeout(r, 200));
  }
  const startSeconds = (performance.now() - t0) / 1000;

  const user = 'rlhf-bench-controller';
  const binding = await cp.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: user },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
  });
  if (binding.status !== 201) fail('binding the controller user', binding);
  const pair = cp.clientCert(user);
  const b64 = (file: string) => readFileSync(file).toString('base64');
  const controllerConfig = {
    clusters: [{ name: 'real', server: cp.server, caData: b64(cp.ca), skipTLSVerify: false }],
    users: [{ name: user, certData: b64(pair.cert), keyData: b64(pair.key) }],
    contexts: [{ name: 'real', cluster: 'real', user, namespace: 'default' }],
    currentContext: 'real',
  };
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  return {
    name: 'real',
    describe: `kube-apiserver ${cp.version} with etcd${kubeControllers ? ', kube-controller-manager and kube-scheduler' : ' (no controller manager, no scheduler)'}`,
    kc,
    controllerKc: () => {
      const counting = new CountingKubeConfig();
      counting.loadFromOptions(controllerConfig);
      return counting;
    },
    prepareNamespace: async (ns) => {
      const res = await cp.request('POST', '/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns },
      });
      if (res.status !== 201) fail(`creating namespace ${ns}`, res);
    },
    startSeconds,
    stop: () => cp.stop(),
  };
}

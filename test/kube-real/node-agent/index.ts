/**
 * A node agent for the real control plane of test/helpers/control-plane.ts: a kubelet that runs pods as
 * local processes. It authenticates as the node (system:node:<name> in system:nodes), so the Node authorizer
 * and NodeRestriction admission apply to it as to a real kubelet; registers its Node (with `nvidia.com/gpu`
 * capacity when asked) and keeps it Ready; runs the pods the scheduler binds to it (pod-worker.ts), each
 * container in its own mount namespace with the pod's volumes bind-mounted (mount-command.ts); and serves
 * their logs to the API server (log-server.ts). See test/kube-real/README.md for what it does not do.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ControlPlane } from '../../helpers/control-plane.js';
import type { JsonObject } from '../../kube/fake-api-server/index.js';
import { rlhfCli } from '../../kube/fake-kubelet.js';
import { startLogServer } from './log-server.js';
import { type NodeApi, nodeApi, type WatchEvent } from './node-api.js';
import { registerNode } from './node-registration.js';
import { PodWorker } from './pod-worker.js';

export { rlhfCli };

export interface NodeAgentOptions {
  /** Node name (default: node-agent-<random>). */
  name?: string;
  /** `nvidia.com/gpu` capacity and allocatable; 0 (the default) advertises none. */
  gpus?: number;
  /** Capacity, as quantities (defaults: cpu 8, memory 32Gi, pods 110). */
  cpu?: string;
  memory?: string;
  pods?: string;
  /** Node labels on top of kubernetes.io/hostname, kubernetes.io/os and kubernetes.io/arch. */
  labels?: Record<string, string>;
  /** Image (`repo/name:tag`, `repo/name` or `name`) -> argv, for containers without `command`. */
  entrypoints?: Record<string, string[]>;
  /** Entrypoint for images not in `entrypoints`. Default: none (such a container waits in CreateContainerConfigError). */
  defaultEntrypoint?: string[];
  /** First word of a container's command line -> argv (`rlhf` maps to the repo CLI unless overridden). */
  commands?: Record<string, string[]>;
  /** Environment every container starts from, under its own env (KUBECONFIG is always removed). */
  baseEnv?: NodeJS.ProcessEnv;
  /**
   * Pod logs, `<namespace>_<pod>_<container>.log`. Default: a fresh temporary directory, kept after stop()
   * so a failing test can still read them.
   */
  logDir?: string;
  /** Working directory of containers without workingDir. Default: the repo root. */
  cwd?: string;
  /** First restart back-off of a crashed container (doubles, up to 10x). Default 1000 ms. */
  restartBackoffMs?: number;
}

export interface RunningContainer {
  namespace: string;
  pod: string;
  container: string;
  pid: number;
}

export interface NodeAgent {
  name: string;
  /**
   * Kills every process the agent started (whole process groups), stops its heartbeats and watch, and
   * removes its pod directories (logs stay). Safe to call twice.
   */
  stop(): Promise<void>;
  runningPods(): RunningContainer[];
  /** A container's log file (default: the pod's first container; for a pod already gone, its only log). */
  logPath(namespace: string, pod: string, container?: string): string;
  /** Errors the agent met writing pod status or deleting pods, for a failing test to show. */
  errors(): string[];
}

const repoRoot = join(rlhfCli[1]!, '../../../..');

/**
 * Pods bound to the node: a list, then a watch from its resourceVersion, re-watched when the server ends it
 * and relisted when the version is too old (410). A relist reports pods that vanished meanwhile as DELETED.
 */
async function watchPods(api: NodeApi, nodeName: string, onPod: (type: string, pod: JsonObject) => void) {
  let stopped = false;
  let current: { close(): void } | undefined;
  const seen = new Map<string, JsonObject>();
  const selector = `fieldSelector=${encodeURIComponent(`spec.nodeName=${nodeName}`)}`;
  const loop = async () => {
    let rv: string | undefined;
    while (!stopped) {
      if (!rv) {
        const list = await api.request('GET', `/api/v1/pods?${selector}`).catch(() => undefined);
        if (list?.status !== 200) {
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        const body = list.body as { metadata: { resourceVersion: string }; items: JsonObject[] };
        const present = new Set(body.items.map((p) => (p.metadata as { uid: string }).uid));
        for (const [uid, pod] of seen) if (!present.has(uid)) onPod('DELETED', pod);
        seen.clear();
        for (const pod of body.items) {
          seen.set((pod.metadata as { uid: string }).uid, pod);
          onPod('ADDED', pod);
        }
        rv = body.metadata.resourceVersion;
      }
      let expired = false;
      const w = api.watch(
        `/api/v1/pods?${selector}&watch=1&allowWatchBookmarks=true&resourceVersion=${rv}`,
        (e: WatchEvent) => {
          const obj = e.object as JsonObject & { code?: number; metadata?: { resourceVersion?: string } };
          if (e.type === 'ERROR') {
            expired = true;
            return;
          }
          if (obj.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
          if (e.type === 'BOOKMARK') return;
          const uid = (obj.metadata as { uid: string }).uid;
          if (e.type === 'DELETED') seen.delete(uid);
          else seen.set(uid, obj);
          onPod(e.type, obj);
        },
      );
      current = w;
      const began = Date.now();
      await w.done;
      if (expired) rv = undefined;
      // A watch that ends at once (API server unreachable or refusing) is retried after a pause.
      if (!stopped && Date.now() - began < 1000) await new Promise((r) => setTimeout(r, 1000));
    }
  };
  const done = loop();
  return {
    async stop() {
      stopped = true;
      current?.close();
      await done;
    },
  };
}

export async function startNodeAgent(cp: ControlPlane, opts: NodeAgentOptions = {}): Promise<NodeAgent> {
  const name = opts.name ?? `node-agent-${Math.random().toString(36).slice(2, 8)}`;
  const ca = readFileSync(cp.ca);
  const clientPair = cp.clientCert(`system:node:${name}`, ['system:nodes']);
  const servingPair = cp.servingCert(name);
  const api = nodeApi(cp.server, {
    ca,
    cert: readFileSync(clientPair.cert),
    key: readFileSync(clientPair.key),
  });
  const logDir = opts.logDir ?? mkdtempSync(join(tmpdir(), `node-agent-logs-${name}-`));
  mkdirSync(logDir, { recursive: true });
  const podRoot = mkdtempSync(join(tmpdir(), `node-agent-pods-${name}-`));
  const url = new URL(cp.server);

  const workers = new Map<string, PodWorker>();
  const byName = (ns: string, pod: string) =>
    [...workers.values()].filter((w) => w.namespace === ns && w.name === pod).at(-1);
  const errors: string[] = [];

  const logs = await startLogServer(
    { ca, cert: readFileSync(servingPair.cert), key: readFileSync(servingPair.key) },
    {
      logPath: (ns, pod, container) =>
        byName(ns, pod)?.logPath(container) ?? join(logDir, `${ns}_${pod}_${container}.log`),
      isRunning: (ns, pod, container) => byName(ns, pod)?.isRunning(container) ?? false,
    },
  );

  const capacity: Record<string, string> = {
    cpu: opts.cpu ?? '8',
    memory: opts.memory ?? '32Gi',
    pods: opts.pods ?? '110',
    'ephemeral-storage': '100Gi',
  };
  if (opts.gpus) capacity['nvidia.com/gpu'] = String(opts.gpus);
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  let heartbeat: { stop(): void };
  try {
    heartbeat = await registerNode(api, {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': arch,
        ...opts.labels,
      },
      capacity,
      port: logs.port,
      version: cp.version,
    });
  } catch (e) {
    logs.server.close();
    api.close();
    throw e;
  }

  const context = {
    api,
    podRoot,
    logDir,
    cwd: opts.cwd ?? repoRoot,
    baseEnv: opts.baseEnv ?? process.env,
    apiHost: url.hostname,
    apiPort: url.port,
    restartBackoffMs: opts.restartBackoffMs ?? 1000,
    entrypoints: opts.entrypoints ?? {},
    defaultEntrypoint: opts.defaultEntrypoint,
    commands: { rlhf: rlhfCli, ...opts.commands },
  };

  const watcher = await watchPods(api, name, (type, pod) => {
    const meta = pod.metadata as { uid: string };
    const known = workers.get(meta.uid);
    if (type === 'DELETED') {
      // Deleted without our final delete (force delete by a user): stop its processes at once.
      if (known) void known.terminate(0, false).finally(() => workers.delete(meta.uid));
      return;
    }
    if (known) {
      known.update(pod);
      return;
    }
    const phase = (pod.status as { phase?: string } | undefined)?.phase;
    const deleting = (pod.metadata as { deletionTimestamp?: string }).deletionTimestamp;
    // A pod that finished before the agent (re)started, or one being deleted, has nothing left to run.
    if (phase === 'Succeeded' || phase === 'Failed' || deleting) {
      if (deleting) {
        void api.request(
          'DELETE',
          `/api/v1/namespaces/${(pod.metadata as { namespace: string }).namespace}/pods/${(pod.metadata as { name: string }).name}`,
          {
            apiVersion: 'v1',
            kind: 'DeleteOptions',
            gracePeriodSeconds: 0,
            preconditions: { uid: meta.uid },
          },
        );
      }
      return;
    }
    const worker = new PodWorker(context, pod);
    workers.set(meta.uid, worker);
    worker.start();
  });

  return {
    name,
    async stop() {
      await watcher.stop();
      heartbeat.stop();
      await Promise.all([...workers.values()].map((w) => w.terminate(0, false)));
      for (const w of workers.values()) if (w.lastError) errors.push(w.lastError);
      workers.clear();
      const closed = new Promise<void>((resolve) => logs.server.close(() => resolve()));
      logs.server.closeAllConnections();
      await closed;
      api.close();
      rmSync(podRoot, { recursive: true, force: true });
    },
    runningPods() {
      return [...workers.values()].flatMap((w) =>
        w
          .processes()
          .map((p) => ({ namespace: w.namespace, pod: w.name, container: p.container, pid: p.pid })),
      );
    },
    logPath(namespace, pod, container) {
      const w = byName(namespace, pod);
      if (w) return w.logPath(container ?? w.firstContainer);
      if (container) return join(logDir, `${namespace}_${pod}_${container}.log`);
      // A pod already gone: its one log, if it had one container.
      const prefix = `${namespace}_${pod}_`;
      const files = readdirSync(logDir).filter(
        (f) => f.startsWith(prefix) && !f.slice(prefix.length).includes('_'),
      );
      return join(logDir, files.length === 1 ? files[0]! : `${prefix}main.log`);
    },
    errors() {
      return [...errors, ...[...workers.values()].flatMap((w) => (w.lastError ? [w.lastError] : []))];
    },
  };
}

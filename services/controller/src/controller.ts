/**
 * The controller process: NATS (stage records, artifacts), informers on RLHFRuns, RLHFIterations and the
 * Jobs it created, a rate-limited work queue keyed by run, and reconcile workers, all started only while
 * this replica holds the leader Lease (when leader election is on). /metrics, /healthz and /readyz come
 * from the probe server; readiness means the caches are synced (or this replica is a standby).
 */
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type V1Job,
} from '@kubernetes/client-node';
import {
  ArtifactRouter,
  ArtifactSandbox,
  connectNats,
  createMetricsRegistry,
  type Logger,
  type NatsAuth,
  openStateKv,
  type ProbeServer,
  startProbeServer,
} from '@rlhf/platform';
import type { PlacementPolicy } from '@rlhf/run-spec';
import { runBase } from '@rlhf/workflow';
import { Counter, Gauge, Histogram } from 'prom-client';
import { KubeCluster } from './kube-cluster.js';
import { reconcile } from './reconcile.js';
import {
  group,
  type IterationObject,
  iterationPlural,
  keyOf,
  labels,
  managedByValue,
  type RunObject,
  runPlural,
  version,
} from './resources.js';
import { RunRecords } from './run-records.js';
import {
  runWorkers,
  type SupervisedInformer,
  startInformer,
  startLeaderElection,
  WorkQueue,
} from './runtime/index.js';
import type { JobConfig } from './stage-job.js';
import { KubeTrainJobCluster } from './trainjob/kube-trainjob-cluster.js';
import { TrainJobs } from './trainjob/train-jobs.js';
import { defaultTrainJobConfig, type TrainJobConfig } from './trainjob/trainjob-manifest.js';
import { KubeVllmCluster } from './vllm/kube-vllm-cluster.js';
import { defaultVllmConfig, type VllmConfig } from './vllm/vllm-manifests.js';
import { VllmServers } from './vllm/vllm-servers.js';

export interface ControllerOptions {
  kc: KubeConfig;
  natsUrl: string;
  /** Credentials and TLS for natsUrl. */
  natsAuth?: NatsAuth;
  /** How long to wait for NATS at start-up (default forever). */
  natsStartWaitMs?: number;
  /** Watch one namespace; all namespaces when absent. */
  namespace?: string;
  jobConfig: JobConfig;
  /** What spec.placement may ask for; absent: the empty policy (no toleration, selector, ... allowed). */
  placementPolicy?: PlacementPolicy;
  /** How vLLM servers run (the chart's `vllm` values); absent: defaultVllmConfig. */
  vllm?: VllmConfig;
  /** How TrainJobs are made (the chart's `trainJob` values); absent: defaultTrainJobConfig. */
  trainJob?: TrainJobConfig;
  /** Parallel reconciles (different runs). Default 4. */
  concurrency?: number;
  /** Every run is reconciled again this often even without events. Default 5 min. */
  resyncMs?: number;
  leaderElection?: { namespace: string; name: string; identity: string; leaseDurationSeconds?: number };
  /** Port of /metrics, /healthz, /readyz; null: no probe server. */
  metricsPort: number | null;
  logger: Logger;
}

export interface RunningController {
  /** The probe server's port, when it has one. */
  metricsPort: number | undefined;
  isLeader(): boolean;
  /** Reconcile counts, durations and API requests (verb and resource) of this process, for benchmarks. */
  stats(): ControllerStats;
  stop(): Promise<void>;
}

export interface ControllerStats {
  reconciles: number;
  errors: number;
  /** Duration of every reconcile, in ms (the latest 100 000). */
  durationsMs: number[];
  apiRequests: Map<string, number>;
}

type AnyList<T> = KubernetesListObject<T & { metadata?: { name?: string } }>;

export async function startController(o: ControllerOptions): Promise<RunningController> {
  const log = o.logger;
  const registry = createMetricsRegistry('controller');
  const reconciles = new Counter({
    name: 'rlhf_controller_reconcile_total',
    help: 'Reconciles of RLHFRuns by result (done, requeue, error).',
    labelNames: ['result'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'rlhf_controller_reconcile_duration_seconds',
    help: 'Time of one reconcile of an RLHFRun.',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  const depth = new Gauge({
    name: 'rlhf_controller_queue_depth',
    help: 'Runs waiting in the work queue.',
    registers: [registry],
  });
  const leaderGauge = new Gauge({
    name: 'rlhf_controller_is_leader',
    help: '1 while this replica holds the leader Lease.',
    registers: [registry],
  });

  const stats: ControllerStats = { reconciles: 0, errors: 0, durationsMs: [], apiRequests: new Map() };
  const nc = await connectNats({
    url: o.natsUrl,
    ...(o.natsAuth ? { auth: o.natsAuth } : {}),
    startWaitMs: o.natsStartWaitMs ?? Number.POSITIVE_INFINITY,
    name: 'rlhf-controller',
    logger: log,
  });
  const kv = await openStateKv(nc);
  // The controller only removes a run's nats-obj:// artifacts: it takes no file:// URIs.
  const store = new ArtifactRouter(nc, ArtifactSandbox.confined({ roots: [], nats: true }));
  const custom = o.kc.makeApiClient(CustomObjectsApi);
  const batch = o.kc.makeApiClient(BatchV1Api);
  const core = o.kc.makeApiClient(CoreV1Api);
  const apps = o.kc.makeApiClient(AppsV1Api);

  let active: { stop(): Promise<void>; cluster: KubeCluster } | null = null;
  let synced = false;
  let election: ReturnType<typeof startLeaderElection> | null = null;
  const probe: ProbeServer | null =
    o.metricsPort === null
      ? null
      : await startProbeServer({
          registry,
          port: o.metricsPort,
          readiness: () => ((election && !election.isLeader()) || synced ? null : 'caches not synced yet'),
        });

  /** Informers, queue and workers: the leader's part. */
  async function lead(): Promise<{ stop(): Promise<void>; cluster: KubeCluster }> {
    const queue = new WorkQueue<string>({ baseDelayMs: 100, maxDelayMs: 60_000 });
    const enqueue = (obj: {
      metadata?: { namespace?: string; name?: string; labels?: Record<string, string> };
    }) => {
      const run = obj.metadata?.labels?.[labels.run];
      if (obj.metadata?.namespace && run) queue.add(keyOf(obj.metadata.namespace, run));
    };
    const ns = o.namespace;
    const path = (plural: string, g = `/apis/${group}/${version}`) =>
      ns ? `${g}/namespaces/${ns}/${plural}` : `${g}/${plural}`;
    const listCustom = (plural: string) => async () =>
      (ns
        ? await custom.listNamespacedCustomObject({ group, version, namespace: ns, plural })
        : await custom.listClusterCustomObject({ group, version, plural })) as AnyList<never>;
    const jobSelector = `${labels.managedBy}=${managedByValue}`;
    const common = { kc: o.kc, resyncMs: o.resyncMs ?? 300_000, logger: log };
    const records = await RunRecords.open(kv, (key) => queue.add(key));
    const runs = (await startInformer<RunObject & { metadata: { name?: string } }>({
      ...common,
      path: path(runPlural),
      list: listCustom(runPlural) as never,
      onEvent: (_t, r) => queue.add(keyOf(r.metadata.namespace as string, r.metadata.name as string)),
    })) as SupervisedInformer<RunObject & { metadata: { name?: string } }>;
    const iterations = await startInformer<IterationObject>({
      ...common,
      path: path(iterationPlural),
      list: listCustom(iterationPlural) as never,
      onEvent: (_t, it) => enqueue(it),
    });
    const jobs = await startInformer<V1Job>({
      ...common,
      path: path('jobs', '/apis/batch/v1'),
      labelSelector: jobSelector,
      list: () =>
        ns
          ? batch.listNamespacedJob({ namespace: ns, labelSelector: jobSelector })
          : batch.listJobForAllNamespaces({ labelSelector: jobSelector }),
      onEvent: (_t, j) => enqueue(j),
    });
    synced = true;
    const cluster = new KubeCluster({ custom, batch, core }, { runs, iterations, jobs }, (err, event) =>
      log.warn(
        { reason: event.reason, err: (err as Error).message ?? String(err) },
        'could not record an Event',
      ),
    );
    const countRequest = (what: string) => cluster.requests.set(what, (cluster.requests.get(what) ?? 0) + 1);
    const trainJobCluster = new KubeTrainJobCluster(custom, countRequest);
    const deps = {
      cluster,
      records,
      jobConfig: o.jobConfig,
      vllm: new VllmServers(
        new KubeVllmCluster({ apps, core }, countRequest),
        o.vllm ?? defaultVllmConfig,
        o.jobConfig,
      ),
      trainJobs: new TrainJobs(
        {
          trainJobsOf: (namespace, run, t) => trainJobCluster.trainJobsOf(namespace, run, t),
          createTrainJob: (obj) => trainJobCluster.createTrainJob(obj),
          deleteTrainJob: (namespace, name) => trainJobCluster.deleteTrainJob(namespace, name),
          createJob: (job) => cluster.createJob(job),
          deleteJob: (namespace, name) => cluster.deleteJob(namespace, name),
        },
        o.trainJob ?? defaultTrainJobConfig,
        o.jobConfig,
      ),
      ...(o.placementPolicy ? { placementPolicy: o.placementPolicy } : {}),
      now: () => new Date(),
      deleteRunData: async (namespace: string, name: string) => {
        const uris = await store.list(`${runBase({ namespace, name })}/`);
        for (const uri of uris) await store.delete(uri);
        await records.purge(namespace, name);
        log.info({ run: keyOf(namespace, name), artifacts: uris.length }, 'deleted the run artifacts');
      },
    };
    const depthTimer = setInterval(() => depth.set(queue.len()), 1000);
    depthTimer.unref();
    const workers = runWorkers(
      queue,
      o.concurrency ?? 4,
      async (key) => {
        const end = duration.startTimer();
        const t0 = performance.now();
        try {
          const r = await reconcile(deps, key);
          reconciles.inc({ result: r === 'done' ? 'done' : 'requeue' });
          return r;
        } finally {
          end();
          stats.reconciles++;
          if (stats.durationsMs.length >= 100_000) stats.durationsMs.shift();
          stats.durationsMs.push(performance.now() - t0);
        }
      },
      (key, err) => {
        reconciles.inc({ result: 'error' });
        stats.errors++;
        log.warn({ run: key, err: (err as Error).message ?? String(err) }, 'reconcile failed; retrying');
      },
    );
    return {
      cluster,
      stop: async () => {
        clearInterval(depthTimer);
        queue.shutdown();
        await workers;
        await Promise.all([runs.stop(), iterations.stop(), jobs.stop()]);
        records.close();
        synced = false;
      },
    };
  }

  let stopping = false;
  election = o.leaderElection
    ? startLeaderElection({
        kc: o.kc,
        ...o.leaderElection,
        logger: log,
        onStartedLeading: async () => {
          leaderGauge.set(1);
          log.info({ identity: o.leaderElection?.identity }, 'leading: starting the reconcilers');
          active = await lead();
        },
        onStoppedLeading: () => {
          leaderGauge.set(0);
          const was = active;
          active = null;
          void was?.stop();
          if (!stopping) log.warn({}, 'lost the leader Lease; reconcilers stopped until it is regained');
        },
      })
    : null;
  if (!election) {
    leaderGauge.set(1);
    active = await lead();
  }

  return {
    metricsPort: probe?.port,
    isLeader: () => (election ? election.isLeader() : true),
    stats: () => ({ ...stats, apiRequests: new Map(active?.cluster.requests ?? []) }),
    stop: async () => {
      stopping = true;
      await election?.stop();
      const was = active;
      active = null;
      await was?.stop();
      await probe?.close();
      await nc.drain().catch(() => {});
    },
  };
}

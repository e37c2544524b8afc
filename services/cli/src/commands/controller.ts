import { hostname } from 'node:os';
import { dirname } from 'node:path';
import {
  invalidArgument,
  type LogLevel,
  type NatsAuth,
  natsAuthEnv,
  parseIntegerIn,
} from '@rlhf/platform/core';
import type { Command } from 'commander';
import { addNatsOptions, natsConfigOf } from '../nats-flags.js';
import { describePlacementPolicy, readPlacementPolicy } from '../placement-policy-file.js';

interface ControllerFlags {
  natsUrl?: string;
  namespace?: string;
  workerImage?: string;
  metricsPort: string;
  leaderElect: string;
  leaseName: string;
  leaseNamespace?: string;
  placementPolicy?: string;
  concurrency: string;
  logLevel: string;
}

const env = process.env;

/**
 * The stage Jobs' NATS credentials: the controller's own NATS_* variables, and the Secrets they point into
 * (RLHF_WORKER_NATS_AUTH_SECRET, RLHF_WORKER_NATS_TLS_SECRET), mounted at the same paths as here.
 */
function natsJobAuth(auth: NatsAuth): {
  natsAuth?: { env: Record<string, string>; secrets: Array<{ secretName: string; mountPath: string }> };
} {
  const secrets: Array<{ secretName: string; mountPath: string }> = [];
  const mounts: Array<[string | undefined, Array<string | undefined>]> = [
    [
      env.RLHF_WORKER_NATS_AUTH_SECRET,
      [auth.passwordFile, auth.tokenFile, auth.credsFile, auth.nkeySeedFile],
    ],
    [env.RLHF_WORKER_NATS_TLS_SECRET, [auth.tlsCaFile, auth.tlsCertFile, auth.tlsKeyFile]],
  ];
  for (const [secretName, files] of mounts) {
    const file = files.find((p) => p !== undefined);
    if (secretName && file) secrets.push({ secretName, mountPath: dirname(file) });
  }
  const jobEnv = natsAuthEnv(auth);
  return Object.keys(jobEnv).length ? { natsAuth: { env: jobEnv, secrets } } : {};
}

export function registerController(program: Command): void {
  const cmd = program
    .command('controller')
    .summary('reconcile RLHFRuns on a Kubernetes cluster into RLHFIterations and stage Jobs')
    .description(
      [
        'The platform controller (the Helm chart runs it). For each RLHFRun it adds a finalizer, checks the spec',
        '(what the CRD schema cannot catch sets Ready=False, reason InvalidSpec), then creates one Job per unit:',
        'setup, then generate, judge, pair, train, evaluate for each iteration (one RLHFIteration per iteration),',
        'each Job running `rlhf stage` in the worker image with the run placement (GPUs, node selector, ...).',
        'Progress comes from Job status and the stage records in NATS KV; metrics land in the run status.',
        'Deleting a run deletes its iterations, Jobs and artifacts. Kubernetes access: KUBECONFIG or in-cluster.',
        'Serves /metrics, /healthz and /readyz on --metrics-port; with leader election only the Lease holder acts.',
        'A run whose spec.placement asks for what --placement-policy does not allow is InvalidSpec (with an Event).',
        'With spec.engines.generate.type vllm, each sampling unit first gets a vLLM Deployment and Service serving its',
        'policy (image, command, port, args, env: env RLHF_VLLM as JSON); its Job starts once the server is ready.',
        'With spec.engines.train.type trainjob, each train stage runs a prepare Job, a Kubeflow TrainJob (runtime,',
        'image, command: env RLHF_TRAINJOB as JSON) and the import Job, through a volume of spec.placement.volumes.',
      ].join('\n'),
    )
    .option(
      '--namespace <NS>',
      'watch only this namespace (default: all) [env WATCH_NAMESPACE]',
      env.WATCH_NAMESPACE,
    )
    .option(
      '--worker-image <IMAGE>',
      'image of the stage Jobs [env RLHF_WORKER_IMAGE]',
      env.RLHF_WORKER_IMAGE,
    )
    .option(
      '--metrics-port <PORT>',
      'probe and metrics port, or "off" [env METRICS_PORT]',
      env.METRICS_PORT ?? '8080',
    )
    .option(
      '--leader-elect <BOOL>',
      'hold a Lease before acting [env LEADER_ELECT]',
      env.LEADER_ELECT ?? 'false',
    )
    .option(
      '--lease-name <NAME>',
      'the Lease [env LEADER_ELECTION_LEASE]',
      env.LEADER_ELECTION_LEASE ?? 'rlhf-controller',
    )
    .option(
      '--lease-namespace <NS>',
      'namespace of the Lease [env LEADER_ELECTION_NAMESPACE, else POD_NAMESPACE]',
      env.LEADER_ELECTION_NAMESPACE ?? env.POD_NAMESPACE,
    )
    .option('--concurrency <N>', 'runs reconciled in parallel', '4')
    .option(
      '--placement-policy <FILE>',
      'YAML of the tolerations, priority classes, node selectors, schedulers and affinity runs may ask for; without it runs may ask for none [env RLHF_PLACEMENT_POLICY]',
      env.RLHF_PLACEMENT_POLICY,
    )
    .option('--log-level <LEVEL>', 'log level [env LOG_LEVEL]', env.LOG_LEVEL ?? 'info');
  addNatsOptions(cmd, 'NATS with JetStream', 'forever');
  cmd.action(async (f: ControllerFlags) => {
    const { createLogger, onStopSignal } = await import('@rlhf/platform');
    const nats = natsConfigOf(f, Number.POSITIVE_INFINITY);
    if (!nats.url) throw invalidArgument('--nats-url', 'is required', 'set NATS_URL or pass --nats-url');
    if (!f.workerImage)
      throw invalidArgument('--worker-image', 'is required', 'set RLHF_WORKER_IMAGE to the platform image');
    const metricsPort =
      f.metricsPort === 'off' ? null : parseIntegerIn(f.metricsPort, '--metrics-port', 0, 65535);
    if (!['true', 'false'].includes(f.leaderElect))
      throw invalidArgument('--leader-elect', `must be true or false, got ${f.leaderElect}`);
    const leaderElect = f.leaderElect === 'true';
    if (leaderElect && !f.leaseNamespace)
      throw invalidArgument('--lease-namespace', 'is required with --leader-elect true', 'set POD_NAMESPACE');
    // Checked before anything connects: a bad policy stops the controller naming its field.
    const placementPolicy = f.placementPolicy ? await readPlacementPolicy(f.placementPolicy) : undefined;
    const logger = createLogger('controller', { level: f.logLevel as LogLevel });
    // Loaded here: only this command needs the Kubernetes client.
    const { KubeConfig } = await import('@kubernetes/client-node');
    const {
      parseArtifactVolumes,
      parseHfJobConfig,
      parseS3JobConfig,
      parseTrainJobConfig,
      parseVllmConfig,
      startController,
    } = await import('@rlhf/controller');
    const kc = new KubeConfig();
    kc.loadFromDefault();
    const controller = await startController({
      kc,
      natsUrl: nats.url,
      natsAuth: nats.auth,
      natsStartWaitMs: nats.startWaitMs,
      ...(f.namespace ? { namespace: f.namespace } : {}),
      jobConfig: {
        image: f.workerImage,
        natsUrl: nats.url,
        ...(env.RLHF_WORKER_NATS_SECRET
          ? {
              natsSecret: {
                name: env.RLHF_WORKER_NATS_SECRET,
                key: env.RLHF_WORKER_NATS_SECRET_KEY ?? 'url',
              },
            }
          : {}),
        ...natsJobAuth(nats.auth),
        ...(env.RLHF_WORKER_SERVICE_ACCOUNT ? { serviceAccountName: env.RLHF_WORKER_SERVICE_ACCOUNT } : {}),
        artifactVolumes: parseArtifactVolumes(env.RLHF_WORKER_ARTIFACT_VOLUMES),
        s3: parseS3JobConfig(env.RLHF_WORKER_S3),
        hf: parseHfJobConfig(env.RLHF_WORKER_HF),
        logLevel: f.logLevel,
      },
      ...(placementPolicy ? { placementPolicy } : {}),
      vllm: parseVllmConfig(env.RLHF_VLLM),
      trainJob: parseTrainJobConfig(env.RLHF_TRAINJOB),
      concurrency: parseIntegerIn(f.concurrency, '--concurrency', 1, 64),
      ...(leaderElect
        ? {
            leaderElection: {
              namespace: f.leaseNamespace as string,
              name: f.leaseName,
              identity: env.POD_NAME ?? `${hostname()}-${process.pid}`,
            },
          }
        : {}),
      metricsPort,
      logger,
    });
    logger.info(
      {
        metricsPort: controller.metricsPort,
        namespace: f.namespace ?? '(all)',
        placementPolicy: placementPolicy
          ? { file: f.placementPolicy, ...describePlacementPolicy(placementPolicy) }
          : 'none: runs may not set tolerations, priority classes, node selectors, schedulers or affinity',
      },
      'controller started',
    );
    onStopSignal(logger, () => controller.stop());
  });
}

/**
 * The Job of one unit of a run (setup, or one stage of an iteration): its pods run `rlhf stage <unit>`
 * with the run as JSON in RLHF_RUN, start the unit's service workers next to themselves, and exit 0 once
 * the unit's record is in JetStream KV. The run's placement becomes the pods' resources (CPU, memory, GPUs),
 * node selector, tolerations, affinity, priority class and scheduler; spec.placement.volumes are mounted
 * (job-sources.ts, with the chart's S3 and Hugging Face settings); spec.maxRetries becomes the Job's
 * backoffLimit.
 */
import { createHash } from 'node:crypto';
import type { V1EnvVar, V1Job, V1OwnerReference, V1ResourceRequirements } from '@kubernetes/client-node';
import { invalidArgument } from '@rlhf/platform/core';
import type { PlacementGroup, RlhfRunSpec } from '@rlhf/run-spec';
import { type StageUnit, unitPlacement } from '@rlhf/workflow';
import {
  type HfJobConfig,
  hfJobEnv,
  hfVolume,
  runVolumes,
  type S3JobConfig,
  s3JobEnv,
} from './job-sources.js';
import { apiVersion, labels, managedByValue } from './resources.js';

export interface JobConfig {
  /** Image of the stage pods (the platform image; its entrypoint is `rlhf`). */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  natsUrl: string;
  /** NATS URL from a Secret instead of natsUrl in plain text. */
  natsSecret?: { name: string; key: string };
  /**
   * NATS credentials of the stage pods: NATS_* variables naming files in Secrets mounted read-only at the
   * same paths as in the controller's pod (the chart's /etc/rlhf/nats-auth and /etc/rlhf/nats-tls).
   */
  natsAuth?: { env: Record<string, string>; secrets: Array<{ secretName: string; mountPath: string }> };
  serviceAccountName?: string;
  logLevel?: string;
  /**
   * Shared volumes holding file:// artifacts (the chart's `artifacts.volumes`): mounted into the stage pods
   * and given to their processes as artifact roots (RLHF_ARTIFACT_ROOTS), the only places file:// URIs of
   * the run may name. None: the run's artifacts are nats-obj:// only.
   */
  artifactVolumes?: ArtifactVolume[];
  /** S3 for s3:// URIs (the chart's artifacts.s3); none: the pods take no s3:// URIs. */
  s3?: S3JobConfig | null;
  /** The Hugging Face Hub for hf:// models (the chart's huggingface); none: the pods take no hf:// URIs. */
  hf?: HfJobConfig | null;
}

/** A PersistentVolumeClaim mounted at `mountPath` as an artifact root. */
export interface ArtifactVolume {
  name: string;
  mountPath: string;
  claimName: string;
  readOnly?: boolean;
}

/**
 * The artifact volumes the controller hands its stage Jobs, from RLHF_WORKER_ARTIFACT_VOLUMES (JSON, set by
 * the chart); each entry is checked, since a bad one would make every Job invalid.
 */
export function parseArtifactVolumes(
  raw: string | undefined,
  field = 'RLHF_WORKER_ARTIFACT_VOLUMES',
): ArtifactVolume[] {
  if (raw === undefined || raw.trim() === '') return [];
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw invalidArgument(
      field,
      'is not JSON',
      'set it to a JSON list of {name, mountPath, claimName, readOnly}',
    );
  }
  if (!Array.isArray(value)) throw invalidArgument(field, 'must be a JSON list');
  return value.map((v, i) => {
    const e = v as Partial<ArtifactVolume>;
    const ok =
      typeof e === 'object' &&
      e !== null &&
      typeof e.name === 'string' &&
      /^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$/.test(e.name) &&
      typeof e.mountPath === 'string' &&
      e.mountPath.startsWith('/') &&
      !e.mountPath.includes(':') &&
      typeof e.claimName === 'string' &&
      e.claimName !== '' &&
      (e.readOnly === undefined || typeof e.readOnly === 'boolean');
    if (!ok)
      throw invalidArgument(
        `${field}[${i}]`,
        'needs a DNS-label name, an absolute mountPath (no ":") and a claimName',
        'fix artifacts.volumes in the chart values',
      );
    return {
      name: e.name,
      mountPath: e.mountPath,
      claimName: e.claimName,
      ...(e.readOnly ? { readOnly: true } : {}),
    } as ArtifactVolume;
  });
}

/** `<run>-<iteration>-<stage>`, shortened with a hash when it would pass 63 characters. */
export function stageJobName(run: string, unit: Pick<StageUnit, 'iteration'> & { stage: string }): string {
  const name = `${run}-${unit.iteration}-${unit.stage}`;
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  const tail = `-${unit.iteration}-${unit.stage}-${hash}`;
  return `${run.slice(0, 63 - tail.length).replace(/-+$/, '')}${tail}`;
}

/**
 * RLHF_ORT_THREADS (ONNX Runtime's intra-op threads) from the container's CPU limit, which the kubelet
 * rounds up to whole CPUs with divisor 1 (500m -> 1); ORT would otherwise use every core of the node.
 */
export function ortThreadsEnv(containerName: string, resources: V1ResourceRequirements): V1EnvVar[] {
  // Without a CPU limit, limits.cpu would read as the node's allocatable CPUs: ORT's default anyway.
  if (resources.limits?.cpu === undefined) return [];
  return [
    {
      name: 'RLHF_ORT_THREADS',
      valueFrom: { resourceFieldRef: { containerName, resource: 'limits.cpu', divisor: '1' } },
    },
  ];
}

/**
 * A stage pod's container resources: the group's CPU and memory requests and limits as given, GPUs as a
 * limit, and a request of 1 CPU for a pod with neither GPUs nor any CPU figure (so it is not best-effort).
 */
export function podResources(placement: PlacementGroup): V1ResourceRequirements {
  const given = placement.resources ?? {};
  const requests: Record<string, string> = { ...given.requests };
  const limits: Record<string, string> = { ...given.limits };
  if (placement.gpus > 0) limits['nvidia.com/gpu'] = String(placement.gpus);
  else if (requests.cpu === undefined && limits.cpu === undefined) requests.cpu = '1';
  return {
    ...(Object.keys(requests).length ? { requests } : {}),
    ...(Object.keys(limits).length ? { limits } : {}),
  };
}

export function stageJob(o: {
  run: { name: string; namespace: string; uid?: string; spec: RlhfRunSpec };
  unit: StageUnit;
  owner: V1OwnerReference;
  config: JobConfig;
  /** More variables of the stage container (e.g. the endpoint of the unit's vLLM server). */
  env?: V1EnvVar[];
  /**
   * A step of the unit in a Job of its own (the prepare step of a train stage handed to a TrainJob): its
   * Job name, `rlhf stage` flags after the unit's, and the `rlhf.dev/step` label.
   */
  step?: { name: string; args: string[]; label: string };
}): V1Job {
  const { run, unit, config } = o;
  const placement = unitPlacement(run.spec, unit.stage);
  const name = o.step?.name ?? stageJobName(run.name, unit);
  const podLabels = {
    [labels.managedBy]: managedByValue,
    [labels.run]: run.name,
    [labels.iteration]: String(unit.iteration),
    [labels.stage]: unit.stage,
    ...(o.step ? { [labels.step]: o.step.label } : {}),
  };
  const queue = run.spec.placement.queue;
  const env: V1EnvVar[] = [
    config.natsSecret
      ? { name: 'NATS_URL', valueFrom: { secretKeyRef: config.natsSecret } }
      : { name: 'NATS_URL', value: config.natsUrl },
    {
      name: 'RLHF_RUN',
      value: JSON.stringify({
        apiVersion,
        kind: 'RLHFRun',
        metadata: { name: run.name, namespace: run.namespace, ...(run.uid ? { uid: run.uid } : {}) },
        spec: run.spec,
      }),
    },
    { name: 'RLHF_STAGE_REPLICAS', value: String(placement.replicas) },
    { name: 'LOG_LEVEL', value: config.logLevel ?? 'info' },
    ...Object.entries(config.natsAuth?.env ?? {}).map(([name, value]) => ({ name, value })),
    ...(o.env ?? []),
  ];
  // A sampling unit handed to an OpenAI-compatible server sends the key of the Secret the run names; the
  // other units never see it. (setup holds pi_0's evaluation, a sampling stage.)
  const served = run.spec.engines.generate;
  if (
    served.type === 'openai' &&
    served.openai?.apiKeySecret &&
    ['setup', 'generate', 'evaluate'].includes(unit.stage)
  )
    env.push({
      name: 'OPENAI_API_KEY',
      valueFrom: {
        secretKeyRef: { name: served.openai.apiKeySecret.name, key: served.openai.apiKeySecret.key },
      },
    });
  const artifactVolumes = config.artifactVolumes ?? [];
  const ownVolumes = runVolumes(run.spec.placement.volumes);
  const hfCache = hfVolume(config.hf);
  // `rlhf stage` reads its spec's file:// URIs under these roots, and its workers inherit the variable.
  const roots = [...artifactVolumes.map((v) => v.mountPath), ...ownVolumes.map((v) => v.mount.mountPath)];
  if (roots.length) env.push({ name: 'RLHF_ARTIFACT_ROOTS', value: roots.join(':') });
  env.push(...s3JobEnv(config.s3), ...hfJobEnv(config.hf));
  const natsSecrets = (config.natsAuth?.secrets ?? []).map((s, i) => ({ ...s, volume: `nats-secret-${i}` }));
  const containerName = 'stage';
  const resources = podResources(placement);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: run.namespace,
      labels: { ...podLabels, ...(queue ? { 'kueue.x-k8s.io/queue-name': queue } : {}) },
      ownerReferences: [o.owner],
    },
    spec: {
      backoffLimit: run.spec.maxRetries,
      parallelism: placement.replicas,
      completions: placement.replicas,
      // A gang scheduler's queue admits the Job by unsuspending it.
      ...(queue ? { suspend: true } : {}),
      template: {
        metadata: { labels: podLabels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          ...(config.serviceAccountName ? { serviceAccountName: config.serviceAccountName } : {}),
          ...(placement.nodeSelector ? { nodeSelector: placement.nodeSelector } : {}),
          ...(placement.tolerations ? { tolerations: placement.tolerations } : {}),
          ...(placement.affinity ? { affinity: placement.affinity } : {}),
          ...(placement.priorityClassName ? { priorityClassName: placement.priorityClassName } : {}),
          ...(run.spec.placement.schedulerName ? { schedulerName: run.spec.placement.schedulerName } : {}),
          securityContext: { runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001 },
          containers: [
            {
              name: containerName,
              image: config.image,
              ...(config.imagePullPolicy ? { imagePullPolicy: config.imagePullPolicy } : {}),
              args: ['stage', unit.stage, '--iteration', String(unit.iteration), ...(o.step?.args ?? [])],
              env: [...env, ...ortThreadsEnv(containerName, resources)],
              resources,
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'tmp', mountPath: '/tmp' },
                ...artifactVolumes.map((v) => ({
                  name: `artifacts-${v.name}`,
                  mountPath: v.mountPath,
                  ...(v.readOnly ? { readOnly: true } : {}),
                })),
                ...ownVolumes.map((v) => v.mount),
                ...hfCache.map((v) => v.mount),
                ...natsSecrets.map((s) => ({ name: s.volume, mountPath: s.mountPath, readOnly: true })),
              ],
            },
          ],
          volumes: [
            { name: 'tmp', emptyDir: {} },
            ...artifactVolumes.map((v) => ({
              name: `artifacts-${v.name}`,
              persistentVolumeClaim: { claimName: v.claimName, ...(v.readOnly ? { readOnly: true } : {}) },
            })),
            ...ownVolumes.map((v) => v.volume),
            ...hfCache.map((v) => v.volume),
            ...natsSecrets.map((s) => ({
              name: s.volume,
              secret: { secretName: s.secretName, defaultMode: 0o440 },
            })),
          ],
        },
      },
    },
  };
}

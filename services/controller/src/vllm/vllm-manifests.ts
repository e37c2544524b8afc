/**
 * The vLLM server of one sampling unit (an iteration's generate or evaluate, or setup's baseline when the
 * policy comes from the spec) with `spec.engines.generate.type: vllm`: a Deployment whose init containers
 * copy the policy out of the run's artifact store and export it as a Hugging Face checkpoint into a volume
 * of the pod (the platform image's `rlhf model pull` and `rlhf model export`; the controller itself loads no
 * model), then `vllm serve` on it with the run's GPU placement; and a Service in front. Both are owned by
 * the unit's owner (the RLHFIteration, or the RLHFRun for setup), so deleting the run removes them.
 * The stage Job finds the server through RLHF_GENERATE_ENGINE_URL and RLHF_GENERATE_ENGINE_MODEL.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type {
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1OwnerReference,
  V1Service,
} from '@kubernetes/client-node';
import { invalidArgument } from '@rlhf/platform/core';
import type { PlacementGroup, RlhfRunSpec } from '@rlhf/run-spec';
import { engineModelEnv, engineUrlEnv, type StageUnit } from '@rlhf/workflow';
import { labels, managedByValue } from '../resources.js';
import type { JobConfig } from '../stage-job.js';

/** The chart's `vllm` values: how the controller runs vLLM servers. */
export interface VllmConfig {
  /** The vLLM server image (its entrypoint serves the OpenAI API, e.g. vllm/vllm-openai). */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Overrides the image's entrypoint (e.g. ["vllm", "serve"]); absent: the image's own. */
  command?: string[];
  /** The server's port, in the pod and on the Service. */
  port: number;
  /** Arguments after the ones the controller sets (--model, --served-model-name, --port, --seed, ...). */
  args: string[];
  /**
   * Environment of the server container. vLLM's CPU build needs one: without VLLM_CPU_KVCACHE_SPACE it
   * reserves --gpu-memory-utilization (0.92) of the node's memory and refuses to start on a shared node.
   */
  env?: Record<string, string>;
}

export const defaultVllmConfig: VllmConfig = { image: 'vllm/vllm-openai:v0.11.0', port: 8000, args: [] };

/** The model name the server answers to (`--served-model-name`), which the stage passes as `model`. */
export const servedModelName = 'policy';
/** Label that marks the controller's vLLM objects, apart from its Jobs. */
export const componentLabel = 'rlhf.dev/component';
export const componentValue = 'vllm';

export { engineModelEnv, engineUrlEnv };

/** The units that sample from the policy, and the placement group their server takes. */
const samplingGroups: Readonly<Record<string, 'generate' | 'evaluate'>> = {
  generate: 'generate',
  evaluate: 'evaluate',
  // setup's sampling is pi_0's baseline evaluation.
  setup: 'evaluate',
};

/** Whether a unit of this spec samples through a vLLM server the controller runs. */
export function usesVllm(spec: RlhfRunSpec, unit: StageUnit): boolean {
  if (spec.engines.generate.type !== 'vllm' || !(unit.stage in samplingGroups)) return false;
  // Setup trains pi_0 inside its own Job when spec.setup is given: there is no policy to serve before it.
  return unit.stage !== 'setup' || spec.setup === undefined;
}

/**
 * `vllm-<run>-<iteration>-<unit>` (a DNS-1035 label: it starts with a letter, as a Service name must),
 * shortened with a hash when it would pass 63 characters.
 */
export function vllmServerName(run: string, unit: Pick<StageUnit, 'iteration' | 'stage'>): string {
  const name = `vllm-${run}-${unit.iteration}-${unit.stage}`;
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  const tail = `-${unit.iteration}-${unit.stage}-${hash}`;
  return `${name.slice(0, 63 - tail.length).replace(/-+$/, '')}${tail}`;
}

/** The OpenAI-compatible endpoint (base URL up to /v1, model name) of a unit's vLLM server. */
export function vllmEndpointFor(
  run: { name: string; namespace: string },
  unit: Pick<StageUnit, 'iteration' | 'stage'>,
  port = defaultVllmConfig.port,
): { url: string; model: string } {
  return {
    url: `http://${vllmServerName(run.name, unit)}.${run.namespace}.svc:${port}/v1`,
    model: servedModelName,
  };
}

/** The stage Job's variables that point it at the unit's server. */
export function vllmEndpointEnv(
  run: { name: string; namespace: string },
  unit: Pick<StageUnit, 'iteration' | 'stage'>,
  port: number,
): V1EnvVar[] {
  const e = vllmEndpointFor(run, unit, port);
  return [
    { name: engineUrlEnv, value: e.url },
    { name: engineModelEnv, value: e.model },
  ];
}

/**
 * RLHF_VLLM (JSON, set by the chart from its `vllm` values), checked field by field: a bad value would
 * make every server invalid. Absent: the defaults.
 */
export function parseVllmConfig(raw: string | undefined, field = 'RLHF_VLLM'): VllmConfig {
  if (raw === undefined || raw.trim() === '') return { ...defaultVllmConfig };
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw invalidArgument(
      field,
      'is not JSON',
      'set it to {"image", "port", "args", "command", "env"} as JSON',
    );
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw invalidArgument(field, 'must be a JSON object', 'fix vllm in the chart values');
  const o = v as Record<string, unknown>;
  const strings = (x: unknown) => Array.isArray(x) && x.every((s) => typeof s === 'string');
  const config: VllmConfig = { ...defaultVllmConfig };
  if (o.image !== undefined) {
    if (typeof o.image !== 'string' || o.image.trim() === '' || /\s/.test(o.image))
      throw invalidArgument(
        `${field}.image`,
        'must be an image reference',
        'set vllm.image in the chart values',
      );
    config.image = o.image;
  }
  if (o.imagePullPolicy !== undefined) {
    if (!['Always', 'IfNotPresent', 'Never'].includes(o.imagePullPolicy as string))
      throw invalidArgument(`${field}.imagePullPolicy`, 'must be Always, IfNotPresent or Never');
    config.imagePullPolicy = o.imagePullPolicy as VllmConfig['imagePullPolicy'] & string;
  }
  if (o.port !== undefined) {
    if (!Number.isInteger(o.port) || (o.port as number) < 1 || (o.port as number) > 65535)
      throw invalidArgument(`${field}.port`, 'must be a port number (1-65535)', 'set vllm.port');
    config.port = o.port as number;
  }
  if (o.args !== undefined) {
    if (!strings(o.args))
      throw invalidArgument(`${field}.args`, 'must be a list of strings', 'set vllm.args');
    config.args = o.args as string[];
  }
  if (o.command !== undefined) {
    if (!strings(o.command))
      throw invalidArgument(`${field}.command`, 'must be a list of strings', 'set vllm.command');
    // Empty: the image's own entrypoint.
    if ((o.command as string[]).length) config.command = o.command as string[];
  }
  if (o.env !== undefined) {
    if (typeof o.env !== 'object' || o.env === null || Array.isArray(o.env))
      throw invalidArgument(`${field}.env`, 'must be a map of names to values', 'set vllm.env');
    for (const [name, value] of Object.entries(o.env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        throw invalidArgument(
          `${field}.env.${name}`,
          'is not an environment variable name',
          'use letters, digits and _ (not first a digit)',
        );
      if (typeof value !== 'string')
        throw invalidArgument(`${field}.env.${name}`, 'must be a string', 'quote it in vllm.env');
    }
    // Empty: nothing to set.
    if (Object.keys(o.env).length) config.env = o.env as Record<string, string>;
  }
  return config;
}

/** The placement group whose GPUs, selector and tolerations the unit's server takes. */
export function serverPlacement(spec: RlhfRunSpec, unit: StageUnit): PlacementGroup {
  const group = samplingGroups[unit.stage];
  if (!group) throw new Error(`unit ${unit.stage} does not sample`);
  return spec.placement[group];
}

export interface VllmServerInput {
  run: { name: string; namespace: string; spec: RlhfRunSpec };
  unit: StageUnit;
  /** The policy to serve: a nats-obj://, s3:// or file:// model URI. */
  policy: string;
  owner: V1OwnerReference;
  vllm: VllmConfig;
  /** The stage Jobs' settings: platform image, NATS, artifact volumes (the init containers use them). */
  job: JobConfig;
}

const modelsDir = '/models';
const policyDir = `${modelsDir}/policy`;
const checkpointDir = `${modelsDir}/hf`;

function podLabels(run: string, unit: StageUnit): Record<string, string> {
  return {
    [labels.managedBy]: managedByValue,
    [labels.run]: run,
    [labels.iteration]: String(unit.iteration),
    [labels.stage]: unit.stage,
    [componentLabel]: componentValue,
  };
}

/**
 * The init containers: pull the policy into the pod's volume (a file:// policy is read where the artifact
 * volume mounts it), then export it as safetensors with its tokenizer, which `vllm serve` loads.
 */
function exportContainers(i: VllmServerInput): V1Container[] {
  const { job } = i;
  const volumes = job.artifactVolumes ?? [];
  const env: V1EnvVar[] = [
    job.natsSecret
      ? { name: 'NATS_URL', valueFrom: { secretKeyRef: job.natsSecret } }
      : { name: 'NATS_URL', value: job.natsUrl },
    { name: 'LOG_LEVEL', value: job.logLevel ?? 'info' },
    ...Object.entries(job.natsAuth?.env ?? {}).map(([name, value]) => ({ name, value })),
    ...(volumes.length
      ? [{ name: 'RLHF_ARTIFACT_ROOTS', value: volumes.map((v) => v.mountPath).join(':') }]
      : []),
  ];
  const mounts = [
    { name: 'models', mountPath: modelsDir },
    { name: 'tmp', mountPath: '/tmp' },
    ...volumes.map((v) => ({ name: `artifacts-${v.name}`, mountPath: v.mountPath, readOnly: true })),
    ...(job.natsAuth?.secrets ?? []).map((s, n) => ({
      name: `nats-secret-${n}`,
      mountPath: s.mountPath,
      readOnly: true,
    })),
  ];
  const base = {
    image: job.image,
    ...(job.imagePullPolicy ? { imagePullPolicy: job.imagePullPolicy } : {}),
    env,
    volumeMounts: mounts,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 10001,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
  };
  const local = i.policy.startsWith('file://');
  const source = local ? fileURLToPath(i.policy) : policyDir;
  return [
    ...(local
      ? []
      : [{ ...base, name: 'pull-policy', args: ['model', 'pull', '--from', i.policy, '--out', policyDir] }]),
    { ...base, name: 'export-policy', args: ['model', 'export', '--model', source, '--out', checkpointDir] },
  ];
}

/** vLLM's own arguments: the exported checkpoint, the name the stage asks for, the run's seed, the GPUs. */
export function vllmArgs(i: Pick<VllmServerInput, 'run' | 'unit' | 'vllm'>): string[] {
  const gpus = serverPlacement(i.run.spec, i.unit).gpus;
  return [
    '--model',
    checkpointDir,
    '--served-model-name',
    servedModelName,
    '--port',
    String(i.vllm.port),
    '--seed',
    String(i.run.spec.generation.seed),
    ...(gpus > 1 ? ['--tensor-parallel-size', String(gpus)] : []),
    ...i.vllm.args,
  ];
}

export function vllmDeployment(i: VllmServerInput): V1Deployment {
  const { run, unit, vllm } = i;
  const placement = serverPlacement(run.spec, unit);
  const name = vllmServerName(run.name, unit);
  const podLabel = podLabels(run.name, unit);
  const given = placement.resources ?? {};
  const limits: Record<string, string> = { ...given.limits };
  if (placement.gpus > 0) limits['nvidia.com/gpu'] = String(placement.gpus);
  const requests: Record<string, string> = { ...given.requests };
  const volumes = i.job.artifactVolumes ?? [];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: run.namespace, labels: podLabel, ownerReferences: [i.owner] },
    spec: {
      replicas: placement.replicas,
      selector: {
        matchLabels: {
          [labels.run]: run.name,
          [labels.stage]: unit.stage,
          [componentLabel]: componentValue,
          [labels.iteration]: String(unit.iteration),
        },
      },
      template: {
        metadata: { labels: podLabel },
        spec: {
          automountServiceAccountToken: false,
          ...(i.job.serviceAccountName ? { serviceAccountName: i.job.serviceAccountName } : {}),
          ...(placement.nodeSelector ? { nodeSelector: placement.nodeSelector } : {}),
          ...(placement.tolerations ? { tolerations: placement.tolerations } : {}),
          ...(placement.affinity ? { affinity: placement.affinity } : {}),
          ...(placement.priorityClassName ? { priorityClassName: placement.priorityClassName } : {}),
          ...(run.spec.placement.schedulerName ? { schedulerName: run.spec.placement.schedulerName } : {}),
          securityContext: { fsGroup: 10001 },
          initContainers: exportContainers(i),
          containers: [
            {
              name: 'vllm',
              image: vllm.image,
              ...(vllm.imagePullPolicy ? { imagePullPolicy: vllm.imagePullPolicy } : {}),
              ...(vllm.command ? { command: vllm.command } : {}),
              args: vllmArgs(i),
              ...(vllm.env
                ? { env: Object.entries(vllm.env).map(([name, value]) => ({ name, value })) }
                : {}),
              ports: [{ name: 'http', containerPort: vllm.port }],
              // vLLM answers /health once the model is loaded and the engine runs.
              readinessProbe: {
                httpGet: { path: '/health', port: 'http' },
                periodSeconds: 5,
                failureThreshold: 3,
              },
              resources: {
                ...(Object.keys(requests).length ? { requests } : {}),
                ...(Object.keys(limits).length ? { limits } : {}),
              },
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              volumeMounts: [
                { name: 'models', mountPath: modelsDir, readOnly: true },
                // Tensor parallelism shares memory between the GPU workers through /dev/shm.
                { name: 'shm', mountPath: '/dev/shm' },
              ],
            },
          ],
          volumes: [
            { name: 'models', emptyDir: {} },
            { name: 'tmp', emptyDir: {} },
            { name: 'shm', emptyDir: { medium: 'Memory' } },
            ...volumes.map((v) => ({
              name: `artifacts-${v.name}`,
              persistentVolumeClaim: { claimName: v.claimName, readOnly: true },
            })),
            ...(i.job.natsAuth?.secrets ?? []).map((s, n) => ({
              name: `nats-secret-${n}`,
              secret: { secretName: s.secretName, defaultMode: 0o440 },
            })),
          ],
        },
      },
    },
  };
}

export function vllmService(i: Pick<VllmServerInput, 'run' | 'unit' | 'owner' | 'vllm'>): V1Service {
  const { run, unit } = i;
  const name = vllmServerName(run.name, unit);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: run.namespace,
      labels: podLabels(run.name, unit),
      ownerReferences: [i.owner],
    },
    spec: {
      type: 'ClusterIP',
      selector: {
        [labels.run]: run.name,
        [labels.stage]: unit.stage,
        [componentLabel]: componentValue,
        [labels.iteration]: String(unit.iteration),
      },
      ports: [{ name: 'http', port: i.vllm.port, targetPort: 'http' }],
    },
  };
}

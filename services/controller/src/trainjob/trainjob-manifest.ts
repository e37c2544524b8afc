/**
 * The Kubeflow Trainer TrainJob (trainer.kubeflow.org/v1alpha1) that trains one iteration with TRL:
 * the runtime from spec.engines.train.trainJob.runtime or the chart's default, the trainer's image and
 * command from the chart (default `trl dpo`) with the arguments trlDpoArgs maps from spec.dpo, numNodes,
 * the train placement group's GPUs, CPU and memory per node, the run's Kueue queue as the
 * `kueue.x-k8s.io/queue-name` label, an owner reference to the iteration (deleting the iteration deletes
 * the TrainJob and what Kubeflow made of it), and the shared artifact volumes mounted into the trainer's
 * pods through a runtime patch, where the prepare step wrote the policy and pairs and the import step reads
 * the checkpoint.
 */
import { createHash } from 'node:crypto';
import type { V1OwnerReference } from '@kubernetes/client-node';
import type { RlhfRunSpec } from '@rlhf/run-spec';
import { labels, managedByValue } from '../resources.js';
import type { ArtifactVolume } from '../stage-job.js';
import { type TrlDpoPaths, trlDpoArgs } from './trl-dpo-command.js';

export const trainJobApiVersion = 'trainer.kubeflow.org/v1alpha1';
export const trainJobPlural = 'trainjobs';
/** The runtimePatches entry this controller owns (Kubeflow keys patches by manager). */
export const runtimePatchManager = 'rlhf.dev/controller';

/** The chart's TrainJob values (`trainJob` in values.yaml). */
export interface TrainJobConfig {
  /** ClusterTrainingRuntime used when the run names none. */
  runtime: string;
  /**
   * The trainer image, with TRL and its dependencies installed; empty: the runtime's own image, which then
   * must have them.
   */
  image: string;
  /** The command before the mapped arguments. */
  command: string[];
  /** The runtime's trainer replicated job and container (Kubeflow's torch runtimes call both `node`). */
  replicatedJob: string;
  container: string;
}

export const defaultTrainJobConfig: TrainJobConfig = {
  runtime: 'torch-distributed',
  image: '',
  command: ['trl', 'dpo'],
  replicatedJob: 'node',
  container: 'node',
};

/**
 * A TrainJob name: the run, iteration and attempt (the first attempt has none, a retry after a failed one
 * `-2`, `-3`, ...), shortened with a digest past Kubernetes' 63 characters.
 */
export function trainJobName(run: string, iteration: number, attempt = 1): string {
  const suffix = attempt > 1 ? `trl-${attempt}` : 'trl';
  const name = `${run}-${iteration}-${suffix}`;
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  const tail = `-${iteration}-${suffix}-${hash}`;
  return `${run.slice(0, 63 - tail.length).replace(/-+$/, '')}${tail}`;
}

export interface TrainJobInputs {
  run: { name: string; namespace: string; spec: RlhfRunSpec };
  iteration: number;
  /** The RLHFIteration the TrainJob belongs to. */
  owner: V1OwnerReference;
  /** Checkpoint, pairs and output paths as the trainer's pods see them (under an artifact volume). */
  paths: TrlDpoPaths;
  config: TrainJobConfig;
  artifactVolumes: readonly ArtifactVolume[];
  seed: number;
  maxLength?: number;
  /** 1 for the first TrainJob of the iteration, one more for each retry after a failed one. */
  attempt?: number;
}

/** The TrainJob object, ready to create. */
export function trainJobManifest(o: TrainJobInputs): Record<string, unknown> {
  const { run, config } = o;
  const train = run.spec.engines.train.trainJob;
  const placement = run.spec.placement.train;
  const numNodes = train.numNodes;
  const gpus = placement.gpus;
  // One process a GPU, one on a CPU node; said explicitly, since the runtime's default on a CPU node may
  // start more, and the batch split below counts them.
  const procsPerNode = Math.max(1, gpus);
  const args = trlDpoArgs({ dpo: run.spec.dpo }, o.paths, {
    processes: numNodes * procsPerNode,
    cpu: gpus === 0,
    seed: o.seed,
    ...(o.maxLength !== undefined ? { maxLength: o.maxLength } : {}),
  });
  const given = placement.resources ?? {};
  const requests: Record<string, string> = { ...given.requests };
  const limits: Record<string, string> = { ...given.limits };
  if (gpus > 0) limits['nvidia.com/gpu'] = String(gpus);
  const queue = run.spec.placement.queue;
  const metaLabels = {
    [labels.managedBy]: managedByValue,
    [labels.run]: run.name,
    [labels.iteration]: String(o.iteration),
    [labels.stage]: 'train',
    [labels.step]: 'trainjob',
    ...(queue ? { 'kueue.x-k8s.io/queue-name': queue } : {}),
  };
  const volumes = o.artifactVolumes.map((v) => ({
    name: v.name,
    persistentVolumeClaim: { claimName: v.claimName, ...(v.readOnly ? { readOnly: true } : {}) },
  }));
  const mounts = o.artifactVolumes.map((v) => ({
    name: v.name,
    mountPath: v.mountPath,
    ...(v.readOnly ? { readOnly: true } : {}),
  }));
  return {
    apiVersion: trainJobApiVersion,
    kind: 'TrainJob',
    metadata: {
      name: trainJobName(run.name, o.iteration, o.attempt),
      namespace: run.namespace,
      labels: metaLabels,
      ownerReferences: [o.owner],
    },
    spec: {
      runtimeRef: {
        name: train.runtime ?? config.runtime,
        apiGroup: 'trainer.kubeflow.org',
        kind: 'ClusterTrainingRuntime',
      },
      // Kueue admits a queued TrainJob by unsuspending it, as it does the stage Jobs.
      ...(queue ? { suspend: true } : {}),
      trainer: {
        ...(config.image ? { image: config.image } : {}),
        command: config.command,
        args,
        numNodes,
        numProcPerNode: procsPerNode,
        resourcesPerNode: {
          ...(Object.keys(requests).length ? { requests } : {}),
          ...(Object.keys(limits).length ? { limits } : {}),
        },
        env: [
          // No hub: the checkpoint and the pairs are local files; a run never downloads a model.
          { name: 'HF_HUB_OFFLINE', value: '1' },
          { name: 'HF_DATASETS_OFFLINE', value: '1' },
        ],
      },
      ...(volumes.length
        ? {
            runtimePatches: [
              {
                manager: runtimePatchManager,
                trainingRuntimeSpec: {
                  template: {
                    spec: {
                      replicatedJobs: [
                        {
                          name: config.replicatedJob,
                          template: {
                            spec: {
                              template: {
                                spec: {
                                  volumes,
                                  containers: [{ name: config.container, volumeMounts: mounts }],
                                },
                              },
                            },
                          },
                        },
                      ],
                    },
                  },
                },
              },
            ],
          }
        : {}),
    },
  };
}

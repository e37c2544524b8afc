/**
 * The batch/v1 Jobs a TrainJob becomes, as Kubeflow Trainer and JobSet together make them: one Job per
 * replicated job of the runtime's template (and per replica), named `<trainjob>-<replicatedJob>-<index>`,
 * owned by the TrainJob. The trainer's replicated job (the one labelled as the trainer ancestor, or named
 * `node`) runs numNodes Indexed pods; its `node` container takes the TrainJob's image, command, args, env
 * and resourcesPerNode, and the PET_* variables torchrun reads (Trainer's torch plugin): PET_NNODES,
 * PET_NPROC_PER_NODE, PET_NODE_RANK (the pod's completion index), PET_MASTER_ADDR and PET_MASTER_PORT.
 * Then the TrainJob's runtimePatches are applied: volumes and a container's volumeMounts and env merged by
 * name, as a strategic merge would.
 */
import type { V1Job } from '@kubernetes/client-node';
import {
  ancestorLabel,
  type Json,
  jobSetNameLabel,
  masterPort,
  nodeContainer,
  replicatedJobNameLabel,
  trainerGroup,
  trainerVersion,
} from './trainjob-types.js';

const clone = <T>(x: T): T => structuredClone(x);

/** Merges `extra` into `list` by `key` (later entries replace earlier ones of the same key). */
function mergeBy(list: Json[] | undefined, extra: Json[] | undefined, key = 'name'): Json[] {
  const out = [...(list ?? [])];
  for (const e of extra ?? []) {
    const i = out.findIndex((x) => x[key] === e[key]);
    if (i >= 0) out[i] = { ...out[i], ...e };
    else out.push(e);
  }
  return out;
}

function isTrainer(rj: Json): boolean {
  return rj.template?.metadata?.labels?.[ancestorLabel] === 'trainer' || rj.name === nodeContainer;
}

/** Trainer's numProcPerNode: the TrainJob's, else one a GPU, else the CPUs asked for (at least 1). */
function procsPerNode(trainer: Json, resources: Json | undefined): string {
  if (trainer.numProcPerNode !== undefined) return String(trainer.numProcPerNode);
  const gpus = Number(resources?.limits?.['nvidia.com/gpu'] ?? resources?.requests?.['nvidia.com/gpu'] ?? 0);
  if (gpus > 0) return String(gpus);
  const cpu = String(resources?.limits?.cpu ?? resources?.requests?.cpu ?? '1');
  const cores = cpu.endsWith('m') ? Number(cpu.slice(0, -1)) / 1000 : Number(cpu);
  return String(Math.max(1, Math.floor(Number.isFinite(cores) ? cores : 1)));
}

function applyTrainer(container: Json, trainJob: Json, numNodes: number): void {
  const t = (trainJob.spec?.trainer ?? {}) as Json;
  if (typeof t.image === 'string' && t.image) container.image = t.image;
  if (Array.isArray(t.command)) container.command = t.command;
  if (Array.isArray(t.args)) container.args = t.args;
  if (t.resourcesPerNode) container.resources = t.resourcesPerNode;
  const name = trainJob.metadata.name as string;
  container.env = mergeBy(container.env, [
    ...(Array.isArray(t.env) ? t.env : []),
    { name: 'PET_NNODES', value: String(numNodes) },
    { name: 'PET_NPROC_PER_NODE', value: procsPerNode(t, container.resources) },
    {
      name: 'PET_NODE_RANK',
      valueFrom: {
        fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" },
      },
    },
    { name: 'PET_MASTER_ADDR', value: `${name}-${nodeContainer}-0-0.${name}` },
    { name: 'PET_MASTER_PORT', value: String(masterPort) },
  ]);
}

/** runtimePatches: each manager's trainingRuntimeSpec patch of replicated jobs' pod specs, by name. */
function applyPatches(rjName: string, podSpec: Json, trainJob: Json): void {
  for (const patch of (trainJob.spec?.runtimePatches ?? []) as Json[]) {
    const rjs = (patch.trainingRuntimeSpec?.template?.spec?.replicatedJobs ?? []) as Json[];
    for (const rj of rjs) {
      if (rj.name !== rjName) continue;
      const p = (rj.template?.spec?.template?.spec ?? {}) as Json;
      if (p.volumes) podSpec.volumes = mergeBy(podSpec.volumes, p.volumes);
      for (const pc of (p.containers ?? []) as Json[]) {
        const c = (podSpec.containers as Json[]).find((x) => x.name === pc.name);
        if (!c) continue;
        if (pc.volumeMounts) c.volumeMounts = mergeBy(c.volumeMounts, pc.volumeMounts, 'mountPath');
        if (pc.env) c.env = mergeBy(c.env, pc.env);
      }
    }
  }
}

export function trainerJobs(trainJob: Json, runtime: Json): V1Job[] {
  const name = trainJob.metadata.name as string;
  const suspend = trainJob.spec?.suspend === true;
  const numNodes = Number(trainJob.spec?.trainer?.numNodes ?? runtime.spec?.mlPolicy?.numNodes ?? 1);
  const jobs: V1Job[] = [];
  for (const rj of (runtime.spec?.template?.spec?.replicatedJobs ?? []) as Json[]) {
    const replicas = Number(rj.replicas ?? 1);
    for (let index = 0; index < replicas; index++) {
      const jobSpec = clone((rj.template?.spec ?? {}) as Json);
      const podTemplate = (jobSpec.template ?? {}) as Json;
      const podSpec = (podTemplate.spec ?? {}) as Json;
      podSpec.containers = (podSpec.containers ?? []) as Json[];
      // JobSet's pods restart only through the Job: Never unless the runtime says OnFailure.
      podSpec.restartPolicy ??= 'Never';
      const labels = { [jobSetNameLabel]: name, [replicatedJobNameLabel]: rj.name as string };
      if (isTrainer(rj)) {
        const node = (podSpec.containers as Json[]).find((c) => c.name === nodeContainer);
        if (node) applyTrainer(node, trainJob, numNodes);
        jobSpec.parallelism = numNodes;
        jobSpec.completions = numNodes;
        jobSpec.completionMode = 'Indexed';
      }
      applyPatches(rj.name as string, podSpec, trainJob);
      jobs.push({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: {
          name: `${name}-${rj.name}-${index}`,
          namespace: trainJob.metadata.namespace,
          labels: { ...(rj.template?.metadata?.labels ?? {}), ...labels },
          ownerReferences: [
            {
              apiVersion: `${trainerGroup}/${trainerVersion}`,
              kind: 'TrainJob',
              name,
              uid: trainJob.metadata.uid,
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec: {
          ...jobSpec,
          suspend,
          template: {
            ...podTemplate,
            metadata: {
              ...(podTemplate.metadata ?? {}),
              labels: { ...(podTemplate.metadata?.labels ?? {}), ...labels },
            },
            spec: podSpec,
          },
        } as NonNullable<V1Job['spec']>,
      });
    }
  }
  return jobs;
}

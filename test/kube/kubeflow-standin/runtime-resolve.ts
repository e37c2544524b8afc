/**
 * The training runtime a TrainJob names in spec.runtimeRef, as Kubeflow Trainer resolves it: a
 * ClusterTrainingRuntime (the default kind) or a TrainingRuntime in the TrainJob's namespace, of the
 * trainer.kubeflow.org group. Another kind or group is what the real controller fails with
 * TrainingRuntimeNotSupported; a runtime that does not exist (yet) is retried, as it does.
 */
import type { CustomObjectsApi } from '@kubernetes/client-node';
import { type Json, trainerGroup, trainerVersion } from './trainjob-types.js';

export type RuntimeLookup =
  | { kind: 'found'; runtime: Json }
  | { kind: 'unsupported'; message: string }
  | { kind: 'missing'; message: string };

const codeOf = (err: unknown) => (err as { code?: number } | null)?.code;

export async function resolveRuntime(custom: CustomObjectsApi, trainJob: Json): Promise<RuntimeLookup> {
  const ref = (trainJob.spec?.runtimeRef ?? {}) as Json;
  const kind = typeof ref.kind === 'string' ? ref.kind : 'ClusterTrainingRuntime';
  const group = typeof ref.apiGroup === 'string' ? ref.apiGroup : trainerGroup;
  const name = typeof ref.name === 'string' ? ref.name : '';
  if (group !== trainerGroup || !['ClusterTrainingRuntime', 'TrainingRuntime'].includes(kind))
    // The real controller's message: fmt.Sprintf("unsupported runtime: %s", runtimeRefGK).
    return { kind: 'unsupported', message: `unsupported runtime: ${kind}.${group}` };
  try {
    const runtime =
      kind === 'ClusterTrainingRuntime'
        ? await custom.getClusterCustomObject({
            group,
            version: trainerVersion,
            plural: 'clustertrainingruntimes',
            name,
          })
        : await custom.getNamespacedCustomObject({
            group,
            version: trainerVersion,
            namespace: trainJob.metadata.namespace,
            plural: 'trainingruntimes',
            name,
          });
    return { kind: 'found', runtime: runtime as Json };
  } catch (err) {
    if (codeOf(err) === 404) return { kind: 'missing', message: `${kind} ${name} not found` };
    throw err;
  }
}

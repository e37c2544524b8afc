/**
 * A stand-in for Kubeflow Trainer's controller (standin.ts says what it does and does not model), and the
 * objects a test installs for it: Kubeflow's TrainJob and ClusterTrainingRuntime CRDs (vendored in
 * test/fixtures/kubeflow) and a runtime shaped like Kubeflow's `torch-distributed`.
 *
 * ```ts
 * for (const f of kubeflowCrdFiles) server.loadCrdFile(f);          // or apply them to a real API server
 * await createRuntime(kc);                                            // the torch-distributed runtime
 * const trainer = await new KubeflowTrainerStandIn(kc, { namespace: 'default' }).start();
 * // ... TrainJobs become Jobs (the fake kubelet runs their pods), their conditions follow ...
 * await trainer.stop();
 * ```
 */
import { readFileSync } from 'node:fs';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { type Json, trainerGroup, trainerVersion } from './trainjob-types.js';

export { KubeflowTrainerStandIn, type StandInOptions } from './standin.js';
export { trainerJobs } from './trainer-jobs.js';
export * from './trainjob-conditions.js';
export * from './trainjob-types.js';

const fixture = (p: string) => new URL(p, import.meta.url).pathname;

export const kubeflowCrdFiles = [
  fixture('../../fixtures/kubeflow/trainer.kubeflow.org_trainjobs.yaml'),
  fixture('../../fixtures/kubeflow/trainer.kubeflow.org_clustertrainingruntimes.yaml'),
];

export const torchDistributedRuntimeFile = fixture('torch-distributed-runtime.yaml');

/** The runtime manifest, optionally under another name; 409 (it exists) counts as created. */
export async function createRuntime(kc: KubeConfig, name?: string): Promise<Json> {
  const runtime = parse(readFileSync(torchDistributedRuntimeFile, 'utf8')) as Json;
  if (name) runtime.metadata.name = name;
  try {
    await kc.makeApiClient(CustomObjectsApi).createClusterCustomObject({
      group: trainerGroup,
      version: trainerVersion,
      plural: 'clustertrainingruntimes',
      body: runtime,
    });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
  return runtime;
}

/** The controller: reconciles RLHFRun resources into RLHFIterations and stage Jobs. */
export {
  type ControllerOptions,
  type ControllerStats,
  type RunningController,
  startController,
} from './controller.js';
export * from './job-sources.js';
export { type ClusterPort, type ReconcileDeps, type RunEvent, reconcile } from './reconcile.js';
export * from './resources.js';
export {
  type ArtifactVolume,
  type JobConfig,
  ortThreadsEnv,
  parseArtifactVolumes,
  stageJob,
  stageJobName,
} from './stage-job.js';
export { KubeTrainJobCluster } from './trainjob/kube-trainjob-cluster.js';
export {
  prepareJobName,
  type TrainJobClusterPort,
  type TrainJobStep,
  TrainJobs,
  trainsOnTrainJob,
} from './trainjob/train-jobs.js';
export { parseTrainJobConfig } from './trainjob/trainjob-config.js';
export {
  defaultTrainJobConfig,
  runtimePatchManager,
  type TrainJobConfig,
  type TrainJobInputs,
  trainJobApiVersion,
  trainJobManifest,
  trainJobName,
  trainJobPlural,
} from './trainjob/trainjob-manifest.js';
export { type TrainJobState, trainJobFailedCondition, trainJobState } from './trainjob/trainjob-status.js';
export { type TrlDpoOptions, type TrlDpoPaths, trlDpoArgs } from './trainjob/trl-dpo-command.js';
export { KubeVllmCluster } from './vllm/kube-vllm-cluster.js';
export { unitPolicy } from './vllm/unit-policy.js';
export {
  defaultVllmConfig,
  engineModelEnv,
  engineUrlEnv,
  parseVllmConfig,
  servedModelName,
  usesVllm,
  type VllmConfig,
  vllmDeployment,
  vllmEndpointFor,
  vllmServerName,
  vllmService,
} from './vllm/vllm-manifests.js';
export { deploymentReady, type ServerState, type VllmClusterPort, VllmServers } from './vllm/vllm-servers.js';

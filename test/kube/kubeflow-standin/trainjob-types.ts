/**
 * The parts of Kubeflow Trainer's API (trainer.kubeflow.org/v1alpha1) the stand-in reads and writes, as
 * they come from an API server: loose JSON, every field optional, checked where it is used.
 */
export const trainerGroup = 'trainer.kubeflow.org';
export const trainerVersion = 'v1alpha1';
export const trainJobPlural = 'trainjobs';

/** JobSet's labels on the Jobs it makes; the stand-in, which plays JobSet too, sets the same. */
export const jobSetNameLabel = 'jobset.sigs.k8s.io/jobset-name';
export const replicatedJobNameLabel = 'jobset.sigs.k8s.io/replicatedjob-name';
/** The runtime template label that marks the trainer's replicated job (constants.AncestorTrainer). */
export const ancestorLabel = 'trainer.kubeflow.org/trainjob-ancestor-step';
/** The trainer container's name in Kubeflow's torch runtimes (constants.Node). */
export const nodeContainer = 'node';
/** torchrun's rendezvous port on the trainer container (constants.ContainerTrainerPort). */
export const masterPort = 29400;

// biome-ignore lint/suspicious/noExplicitAny: API objects are read as loose JSON and checked where used
export type Json = Record<string, any>;

export interface TrainJobCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export interface JobStatusEntry {
  name: string;
  ready: number;
  succeeded: number;
  failed: number;
  active: number;
  suspended: number;
}

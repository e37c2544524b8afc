/**
 * The Kubernetes objects the controller reads and writes: API coordinates, labels, the finalizer, and the
 * shapes of RLHFRun and RLHFIteration as they come from the API server (spec types from @rlhf/run-spec).
 */
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { RlhfRunSpec } from '@rlhf/run-spec';

export const group = 'rlhf.dev';
export const version = 'v1alpha1';
export const apiVersion = `${group}/${version}`;
export const runPlural = 'rlhfruns';
export const iterationPlural = 'rlhfiterations';

/** Removes the run's artifacts and stage records before the RLHFRun goes away. */
export const finalizer = 'rlhf.dev/artifacts';
export const fieldManager = 'rlhf-controller';

export const labels = {
  managedBy: 'app.kubernetes.io/managed-by',
  run: 'rlhf.dev/run',
  iteration: 'rlhf.dev/iteration',
  stage: 'rlhf.dev/stage',
  /** A step of a unit run in its own Job or resource (prepare, trainjob): apart from the unit's Job. */
  step: 'rlhf.dev/step',
} as const;
export const managedByValue = 'rlhf-controller';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface IterationMetrics {
  iteration: number;
  policy?: string;
  proxyReward?: number;
  goldReward?: number;
  winRate?: number;
  kl?: number;
  meanLength?: number;
  pairs?: number;
  dpoLoss?: number;
  dpoAccuracy?: number;
  completionTime?: string;
}

export type Phase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface RunStatus {
  phase?: Phase;
  iteration?: number;
  progress?: string;
  stage?: string;
  bestIteration?: number;
  bestPolicy?: string;
  latest?: IterationMetrics;
  iterations?: IterationMetrics[];
  startTime?: string;
  completionTime?: string;
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface RunObject {
  apiVersion: string;
  kind: 'RLHFRun';
  metadata: V1ObjectMeta;
  /** Unvalidated: the controller parses it (what the CRD schema cannot check sets InvalidSpec). */
  spec: RlhfRunSpec;
  status?: RunStatus;
}

export interface StageStatus {
  name: string;
  state: Phase;
  jobName?: string;
  attempts?: number;
  message?: string;
  startTime?: string;
  completionTime?: string;
}

export interface IterationStatus {
  phase?: Phase;
  stage?: string;
  stages?: StageStatus[];
  metrics?: IterationMetrics;
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface IterationSpec {
  run: string;
  iteration: number;
  policy: string;
  reference: string;
  output?: string;
  prompts: { dataset: string; offset: number; count: number; eval?: string };
}

export interface IterationObject {
  apiVersion: string;
  kind: 'RLHFIteration';
  metadata: V1ObjectMeta;
  spec: IterationSpec;
  status?: IterationStatus;
}

export const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

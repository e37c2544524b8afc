/** The RLHFRun spec after defaulting (every field with a default is present). Mirrors rlhf-run-schema.ts. */
export interface PlacementGroup {
  replicas: number;
  gpus: number;
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  affinity?: Record<string, unknown>;
  priorityClassName?: string;
  resources?: { requests?: PodQuantities; limits?: PodQuantities };
}

/** Kubernetes quantities, e.g. { cpu: '4', memory: '8Gi' }. */
export interface PodQuantities {
  cpu?: string;
  memory?: string;
}

export interface TrainingSection {
  epochs: number;
  learningRate: number;
  batchSize: number;
}

export interface SetupSpec {
  task: 'sentiment';
  seed: number;
  prompts: number;
  evalPrompts: number;
  sftExamples: number;
  preferencePairs: number;
  preferenceEvalPairs: number;
  lengthFitPrompts: number;
  model: {
    hiddenSize: number;
    intermediateSize: number;
    numHiddenLayers: number;
    numAttentionHeads: number;
    numKeyValueHeads: number;
    maxPositionEmbeddings: number;
    vocabSize: number;
  };
  sft: TrainingSection;
  rewardModel: TrainingSection;
  /** Present: setup trains a pairwise preference model too. */
  preferenceModel?: TrainingSection;
}

/** A key of a Secret in the run's namespace. */
export interface SecretKeyRef {
  name: string;
  key: string;
}

/** An OpenAI-compatible server a stage is handed to. */
export interface OpenAIEndpoint {
  /** Base URL up to and including /v1. */
  url: string;
  /** The request's model; unset: the URI of the model the stage runs (the iteration's policy). */
  model?: string;
  apiKeySecret?: SecretKeyRef;
}

export type GenerateEngine = 'builtin' | 'openai' | 'vllm';
export type JudgeEngine = 'builtin' | 'openai';
export type TrainEngine = 'builtin' | 'trainjob';
/** Every engine a stage can run on. */
export type EngineType = GenerateEngine | JudgeEngine | TrainEngine;

export interface EnginesSpec {
  generate: { type: GenerateEngine; openai?: OpenAIEndpoint };
  judge: { type: JudgeEngine; openai?: OpenAIEndpoint };
  train: { type: TrainEngine; trainJob: { runtime?: string; numNodes: number } };
}

export interface RlhfRunSpec {
  setup?: SetupSpec;
  policy?: { model: string };
  reference: 'initial' | 'previous';
  judge: {
    type: 'reward' | 'preference' | 'gold';
    model?: string;
    lengthPenalty: number | 'auto';
    task?: 'sentiment';
  };
  prompts: { dataset?: string; perIteration: number; eval?: string };
  iterations: number;
  generation: {
    samplesPerPrompt: number;
    temperature: number;
    topP: number;
    topK: number;
    maxNewTokens: number;
    seed: number;
  };
  pairs: {
    strategy: 'maxMin' | 'maxRandom' | 'random';
    /** Offline DPO: labelled pairs to train on instead of generating and judging. */
    dataset?: string;
  };
  dpo: {
    beta: number;
    learningRate: number;
    epochs: number;
    batchSize: number;
    gradAccum: number;
    warmupRatio: number;
    schedule: 'cosine' | 'linear' | 'constant';
    lossType: 'sigmoid' | 'ipo' | 'hinge';
    labelSmoothing: number;
    nllWeight: number;
    maxGradNorm: number;
  };
  engines: EnginesSpec;
  placement: {
    generate: PlacementGroup;
    judge: PlacementGroup;
    train: PlacementGroup;
    evaluate: PlacementGroup;
    schedulerName?: string;
    queue?: string;
    volumes?: RunVolume[];
  };
  maxRetries: number;
}

/** A PersistentVolumeClaim the run's stage pods mount (spec.placement.volumes, placement-volumes.ts). */
export interface RunVolume {
  /** A DNS label, unique in the run; the pods' volume is `run-<name>`. */
  name: string;
  /** A PersistentVolumeClaim in the run's namespace. */
  claimName: string;
  /** Absolute, without ":" (RLHF_ARTIFACT_ROOTS is colon-separated). */
  mountPath: string;
  readOnly?: boolean;
}

export interface RlhfRun {
  apiVersion: 'rlhf.dev/v1alpha1';
  kind: 'RLHFRun';
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: RlhfRunSpec;
}

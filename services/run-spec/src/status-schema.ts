/**
 * What the controller writes: the status of an RLHFRun and the spec and status of the RLHFIteration it owns.
 * Plain schema data like rlhf-run-schema.ts, so the CRDs (and the controller's types) come from one place.
 */
import type { SchemaNode } from './schema-types.js';

/**
 * SchemaNode plus the OpenAPI and Kubernetes keywords that only status and CRD-side schemas need
 * (formats, list semantics for server-side apply, CEL rules that point at a field).
 */
export interface CrdNode extends Omit<SchemaNode, 'properties' | 'items' | 'additionalProperties'> {
  properties?: Record<string, CrdNode>;
  items?: CrdNode;
  additionalProperties?: CrdNode;
  format?: 'date-time' | 'int64';
  maxLength?: number;
  maxItems?: number;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
}

/**
 * The stages of a run, in order; the names match spec.placement and the JetStream subject tokens. `setup` is
 * the controller's unit for everything of iteration 0 (data, SFT, reward model, length fit, pi_0's evaluation).
 */
export const runStages = [
  'setup',
  'sft',
  'rewardModel',
  'preferenceModel',
  'generate',
  'judge',
  'pair',
  'train',
  'evaluate',
] as const;
export type RunStage = (typeof runStages)[number];

/** Kubernetes condition types the controller maintains (docs/ARCHITECTURE.md, section 9). */
export const conditionTypes = ['Ready', 'Succeeded', 'Failed', 'Progressing'] as const;

const stage = (description: string): CrdNode => ({
  type: 'string',
  description,
  enum: [...runStages],
});

const count = (description: string): CrdNode => ({ type: 'integer', description, minimum: 0 });
const number = (description: string): CrdNode => ({ type: 'number', description });
const share = (description: string): CrdNode => ({ type: 'number', description, minimum: 0, maximum: 1 });
const time = (description: string): CrdNode => ({ type: 'string', description, format: 'date-time' });
const observedGeneration: CrdNode = {
  type: 'integer',
  description: 'metadata.generation of the spec this status was computed from.',
  format: 'int64',
  minimum: 0,
};

/** metav1.Condition, field for field. */
export const conditionsSchema: CrdNode = {
  type: 'array',
  description: `Current state as Kubernetes conditions (${conditionTypes.join(', ')}), one per type.`,
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
  maxItems: 16,
  items: {
    type: 'object',
    description: 'One aspect of the current state.',
    required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
    properties: {
      type: {
        type: 'string',
        description: `Condition type: ${conditionTypes.join(', ')}.`,
        maxLength: 316,
        pattern:
          '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$',
      },
      status: { type: 'string', description: 'True, False or Unknown.', enum: ['True', 'False', 'Unknown'] },
      reason: {
        type: 'string',
        description: 'Machine-readable CamelCase reason of the last transition (e.g. StageFailed).',
        minLength: 1,
        maxLength: 1024,
        pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
      },
      message: { type: 'string', description: 'What happened, for a human.', maxLength: 32768 },
      lastTransitionTime: time('When the status last changed.'),
      observedGeneration,
    },
  },
};

/** What an iteration measured (docs/ARCHITECTURE.md, section 1); each field unset until its stage has run. */
export const iterationMetricsSchema: CrdNode = {
  type: 'object',
  description: 'Measurements of one iteration on the held-out prompts and of its DPO training.',
  properties: {
    iteration: count('The iteration t (0 is the initial policy pi_0).'),
    policy: { type: 'string', description: 'Model URI of pi_t, the policy this iteration trained.' },
    proxyReward: number('Mean judge reward on the evaluation prompts (what the policy optimises).'),
    goldReward: number('Mean gold reward on the evaluation prompts, where the run configures one.'),
    winRate: share('Share of evaluation prompts where pi_t beats pi_0 under the judge (ties count half).'),
    kl: number('KL(pi_t || pi_0) estimated from samples, in nats per response.'),
    meanLength: number('Mean response length in words on the evaluation prompts.'),
    pairs: count('Preference pairs DPO trained on (after dropping ties and identical texts).'),
    dpoLoss: number('DPO loss at the end of training.'),
    dpoAccuracy: share('Share of training pairs whose implicit reward ranks chosen above rejected.'),
    deadLetters: count('Work shards that exhausted their deliveries and were set aside.'),
    completionTime: time('When the iteration finished.'),
  },
};

export const rlhfRunStatusSchema: CrdNode = {
  type: 'object',
  description: 'Observed state of the run, written by the controller.',
  properties: {
    phase: {
      type: 'string',
      description: 'Pending, Running, Succeeded or Failed.',
      enum: ['Pending', 'Running', 'Succeeded', 'Failed'],
    },
    iteration: count('The iteration in progress (or the last one, once the run has finished).'),
    progress: {
      type: 'string',
      description: 'Iteration progress as "t/T" (the Iteration printer column).',
      maxLength: 16,
    },
    stage: stage('The stage in progress, if any.'),
    bestIteration: count('The iteration with the best validation reward so far (0 is pi_0).'),
    bestPolicy: { type: 'string', description: 'Model URI of the best policy so far.' },
    deadLetters: count('Dead-lettered work shards over the whole run.'),
    latest: { ...iterationMetricsSchema, description: 'Metrics of the latest evaluated iteration.' },
    iterations: {
      type: 'array',
      description: 'Metrics of every evaluated iteration, oldest first (iteration 0 is pi_0).',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['iteration'],
      maxItems: 101,
      items: { ...iterationMetricsSchema, required: ['iteration'] },
    },
    startTime: time('When the first stage started.'),
    completionTime: time('When the run succeeded or failed.'),
    observedGeneration,
    conditions: conditionsSchema,
  },
};

const modelUri = (description: string): CrdNode => ({
  type: 'string',
  description: `${description} Artifact URI: nats-obj://<bucket>/<key> or file:///absolute/path.`,
  pattern: '^(nats-obj://[A-Za-z0-9_-]+/.+|file:///.+)$',
});

/** RLHFIteration is created by the controller, one per iteration, and never edited afterwards. */
export const rlhfIterationSpecSchema: CrdNode = {
  type: 'object',
  description:
    'One iteration t of an RLHFRun: generate, judge, pair, train and evaluate (set by the controller).',
  required: ['run', 'iteration', 'policy', 'reference', 'prompts'],
  'x-kubernetes-validations': [
    { rule: 'self == oldSelf', message: 'spec is immutable: the controller creates a new iteration instead' },
  ],
  properties: {
    run: {
      type: 'string',
      description: 'Name of the owning RLHFRun in the same namespace.',
      maxLength: 63,
      pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
    },
    iteration: { type: 'integer', description: 'The iteration t, 1..T.', minimum: 1, maximum: 100 },
    policy: modelUri('pi_{t-1}: the policy that generates and the warm start of training.'),
    reference: modelUri('The DPO reference policy (pi_0, or pi_{t-1} with reference: previous).'),
    output: modelUri('Where pi_t is written.'),
    prompts: {
      type: 'object',
      description: 'The slice of the prompt dataset this iteration uses.',
      required: ['dataset', 'offset', 'count'],
      properties: {
        dataset: modelUri('Training prompts, JSONL.'),
        offset: count('Index of the first prompt of the slice in the seeded permutation.'),
        count: { type: 'integer', description: 'Prompts in the slice.', minimum: 1 },
        eval: modelUri('Held-out prompts for evaluation.'),
      },
    },
  },
};

export const stageStatusSchema: CrdNode = {
  type: 'object',
  description: 'Progress of one stage of the iteration.',
  required: ['name', 'state'],
  properties: {
    name: stage('The stage.'),
    state: {
      type: 'string',
      description: 'Pending, Running, Succeeded or Failed.',
      enum: ['Pending', 'Running', 'Succeeded', 'Failed'],
    },
    shardsDone: count('Work shards whose output is stored.'),
    shardsTotal: count('Work shards of the stage.'),
    jobName: { type: 'string', description: 'Name of the Kubernetes Job running the stage workers.' },
    attempts: count('Job attempts so far (bounded by spec.maxRetries of the run plus one).'),
    deadLetters: count('Shards of this stage that were dead-lettered.'),
    message: { type: 'string', description: 'Last error or progress note.', maxLength: 32768 },
    startTime: time('When the stage started.'),
    completionTime: time('When the stage succeeded or failed.'),
  },
};

export const rlhfIterationStatusSchema: CrdNode = {
  type: 'object',
  description: 'Observed state of the iteration, written by the controller.',
  properties: {
    phase: {
      type: 'string',
      description: 'Pending, Running, Succeeded or Failed.',
      enum: ['Pending', 'Running', 'Succeeded', 'Failed'],
    },
    stage: stage('The stage in progress, if any.'),
    stages: {
      type: 'array',
      description: 'Every stage started so far, in order.',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      maxItems: runStages.length,
      items: stageStatusSchema,
    },
    metrics: iterationMetricsSchema,
    observedGeneration,
    conditions: conditionsSchema,
  },
};

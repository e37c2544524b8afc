/**
 * The RLHFRun spec, field by field: descriptions (what `kubectl explain` shows), defaults (the paper's),
 * ranges and enums. The only definition of these facts: validation, defaulting and the CRD come from it.
 */
import { engineCelRules } from './engine-rules.js';
import { placementVolumesSchema } from './placement-volumes.js';
import { cpuQuantityPattern, memoryQuantityPattern } from './quantity.js';
import type { SchemaNode } from './schema-types.js';

/** The URI forms of a run's inputs, one alternative each (parseArtifactUri in @rlhf/platform reads them). */
const uriForms = {
  natsObj: 'nats-obj://[A-Za-z0-9_-]+/.+',
  s3: 's3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+',
  file: 'file:///.+',
  hf: 'hf://[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9._/-]+)?',
};

const datasetUriSchema: SchemaNode = {
  type: 'string',
  description:
    'Artifact URI: nats-obj://<bucket>/<key> (JetStream Object Store), s3://<bucket>/<key> (S3 or an S3-protocol store) or file:///absolute/path (on a volume the run mounts).',
  pattern: `^(${uriForms.natsObj}|${uriForms.s3}|${uriForms.file})$`,
};

const modelUriSchema: SchemaNode = {
  type: 'string',
  description:
    'Model URI: nats-obj://<bucket>/<key>, s3://<bucket>/<key>, file:///absolute/path or hf://<org>/<name>[@<revision>] (a Hugging Face Hub model, read only).',
  pattern: `^(${uriForms.natsObj}|${uriForms.s3}|${uriForms.hf}|${uriForms.file})$`,
};

const uri = (description: string): SchemaNode => ({
  ...datasetUriSchema,
  description: `${description} ${datasetUriSchema.description}`,
});

const modelUri = (description: string): SchemaNode => ({
  ...modelUriSchema,
  description: `${description} ${modelUriSchema.description}`,
});

const quantities = (which: string): SchemaNode => ({
  type: 'object',
  description: `CPU and memory ${which} of each pod.`,
  properties: {
    cpu: {
      type: 'string',
      description: 'CPU as a Kubernetes quantity: cores or millicores ("4", "1.5", "500m").',
      pattern: cpuQuantityPattern,
    },
    memory: {
      type: 'string',
      description: 'Memory as a Kubernetes quantity: bytes with an optional suffix ("8Gi", "512Mi", "2G").',
      pattern: memoryQuantityPattern,
    },
  },
});

const placementGroup = (what: string): SchemaNode => ({
  type: 'object',
  description: `Where and how ${what} runs on the cluster (ignored by local runs).`,
  properties: {
    replicas: {
      type: 'integer',
      description: 'Worker pods for this stage.',
      minimum: 1,
      maximum: 1024,
      default: 1,
    },
    gpus: {
      type: 'integer',
      description:
        'nvidia.com/gpu per pod. Only a stage handed to a GPU engine uses them (spec.engines: vllm for generate and evaluate, trainjob for train); the built-in engine runs on CPU, so a built-in stage asking for GPUs is refused.',
      minimum: 0,
      maximum: 64,
      default: 0,
    },
    nodeSelector: {
      type: 'object',
      description: 'Node labels the pods must match.',
      additionalProperties: { type: 'string', description: 'Label value.' },
    },
    tolerations: {
      type: 'array',
      description: 'Kubernetes tolerations, passed to the pods unchanged.',
      items: { type: 'object', description: 'A toleration.', 'x-kubernetes-preserve-unknown-fields': true },
    },
    affinity: {
      type: 'object',
      description: 'Kubernetes affinity, passed to the pods unchanged.',
      'x-kubernetes-preserve-unknown-fields': true,
    },
    priorityClassName: { type: 'string', description: 'PriorityClass of the pods.' },
    resources: {
      type: 'object',
      description:
        "CPU and memory of each pod, as in a container spec. A CPU limit also sets ONNX Runtime's threads " +
        '(RLHF_ORT_THREADS); without any CPU request or limit, pods without GPUs request 1 CPU.',
      properties: { requests: quantities('requests'), limits: quantities('limits') },
    },
  },
});

const intIn = (description: string, minimum: number, maximum: number, dflt: number): SchemaNode => ({
  type: 'integer',
  description,
  minimum,
  maximum,
  default: dflt,
});

const trainingSection = (what: string, epochs: number, lr: number): SchemaNode => ({
  type: 'object',
  description: `Training of ${what}.`,
  properties: {
    epochs: intIn('Passes over the dataset.', 1, 1000, epochs),
    learningRate: {
      type: 'number',
      description: 'Peak learning rate (cosine schedule, 3% warmup).',
      minimum: 0,
      exclusiveMinimum: true,
      maximum: 10,
      default: lr,
    },
    batchSize: intIn('Batch size in examples.', 1, 65536, 32),
  },
});

/** Stages before iteration 1 that build pi_0, the judge and the datasets (docs/ARCHITECTURE.md, section 4). */
const setupSchema: SchemaNode = {
  type: 'object',
  description:
    "Optional stages before iteration 1: synthesize a built-in task's data, train the SFT policy pi_0 and the Bradley-Terry reward model on it. With setup, spec.policy, spec.prompts.dataset and spec.judge.model default to what these stages produce.",
  required: ['task'],
  properties: {
    task: {
      type: 'string',
      description:
        'Built-in task whose data is synthesized (prompts, eval prompts, SFT corpus, annotator labels).',
      enum: ['sentiment'],
    },
    seed: intIn('Seed of the synthetic data and of model initialisation.', 0, 2147483647, 1),
    prompts: intIn('Training prompts synthesized.', 16, 10_000_000, 2048),
    evalPrompts: intIn('Held-out evaluation prompts synthesized.', 4, 1_000_000, 256),
    sftExamples: intIn('SFT demonstrations synthesized.', 16, 10_000_000, 4000),
    preferencePairs: intIn('Annotator-labelled pairs for the reward model.', 16, 10_000_000, 4000),
    preferenceEvalPairs: intIn('Held-out labelled pairs (reward-model accuracy).', 4, 1_000_000, 500),
    lengthFitPrompts: intIn('Prompts sampled twice by pi_0 to fit lengthPenalty: auto.', 4, 1_000_000, 512),
    model: {
      type: 'object',
      description: 'Shape of the Llama-style policy and reward model trained from scratch.',
      properties: {
        hiddenSize: intIn('hidden_size.', 8, 65536, 64),
        intermediateSize: intIn('intermediate_size (SwiGLU).', 8, 262144, 172),
        numHiddenLayers: intIn('num_hidden_layers.', 1, 256, 2),
        numAttentionHeads: intIn('num_attention_heads.', 1, 256, 4),
        numKeyValueHeads: intIn('num_key_value_heads (grouped-query attention).', 1, 256, 2),
        maxPositionEmbeddings: intIn('max_position_embeddings.', 16, 131072, 96),
        vocabSize: intIn(
          'Most tokens of the byte-level BPE trained on the SFT corpus (it stops when no pair is left to merge: 524 on the sentiment grammar, where every word is one token).',
          260,
          262144,
          524,
        ),
      },
    },
    sft: trainingSection('the SFT policy', 8, 6e-3),
    rewardModel: trainingSection('the Bradley-Terry reward model (from the SFT backbone)', 4, 1e-3),
    preferenceModel: {
      ...trainingSection(
        'the pairwise preference model (from the SFT backbone, both orders of each pair)',
        4,
        1e-3,
      ),
      description:
        'Training of the pairwise preference model (from the SFT backbone, on both orders of each pair). Present: setup trains it (on the same labelled pairs as the reward model); a preference judge without judge.model then uses it. Absent with a preference judge and no judge.model: trained with the rewardModel settings.',
      required: ['epochs'],
    },
  },
};

const secretKey: SchemaNode = {
  type: 'object',
  description: "A key of a Secret in the run's namespace.",
  required: ['name', 'key'],
  properties: {
    name: { type: 'string', description: 'Secret name.', minLength: 1 },
    key: { type: 'string', description: 'Key in the Secret.', minLength: 1 },
  },
};

const openaiEndpoint = (what: string, modelNote: string): SchemaNode => ({
  type: 'object',
  description: `The OpenAI-compatible server that ${what} (type openai).`,
  required: ['url'],
  properties: {
    url: {
      type: 'string',
      description: 'Base URL of the API, up to and including /v1 (e.g. http://vllm.team:8000/v1).',
      pattern: '^https?://[^\\s/]+(/\\S*)?$',
    },
    model: {
      type: 'string',
      description: `The model field of each request. ${modelNote}`,
      minLength: 1,
    },
    apiKeySecret: {
      ...secretKey,
      description:
        'Secret key holding the API key, sent as a bearer token (cluster runs). Local runs read OPENAI_API_KEY.',
    },
  },
});

/** Which engine executes a stage (docs/ARCHITECTURE.md, "engines"): built-in (CPU, ONNX Runtime) or handed off. */
const enginesSchema: SchemaNode = {
  type: 'object',
  description:
    "Which engine runs each stage. builtin (the default) is the platform's own ONNX Runtime engine on CPU; the others hand the stage to the engines used at scale.",
  properties: {
    generate: {
      type: 'object',
      description: 'Engine of the generate and evaluate stages (sampling responses).',
      properties: {
        type: {
          type: 'string',
          description:
            "builtin: the policy-generator service; openai: any OpenAI-compatible server (openai.url); vllm: a vLLM server the controller starts for each iteration's policy, on spec.placement.generate.",
          enum: ['builtin', 'openai', 'vllm'],
          default: 'builtin',
        },
        openai: openaiEndpoint(
          'generates',
          "Unset: the artifact URI of the policy being sampled, so a server that loads policies by URI (rlhf serve policy-generator --openai-port with --artifact-root or the run's object store) samples each iteration's policy. Set: one fixed served model for every iteration, which then never samples the trained policies.",
        ),
      },
    },
    judge: {
      type: 'object',
      description: 'Engine of the judge stage (scoring responses).',
      properties: {
        type: {
          type: 'string',
          description:
            'builtin: the reward-model or preference-model service. openai is refused: the judge workers score with the reward-model service only.',
          enum: ['builtin', 'openai'],
          default: 'builtin',
        },
        openai: openaiEndpoint('scores', 'The reward model the server serves.'),
      },
    },
    train: {
      type: 'object',
      description: 'Engine of the train stage (DPO).',
      properties: {
        type: {
          type: 'string',
          description:
            'builtin: the dpo-trainer service; trainjob: a Kubeflow Trainer TrainJob (trainer.kubeflow.org/v1alpha1) running TRL, on spec.placement.train.',
          enum: ['builtin', 'trainjob'],
          default: 'builtin',
        },
        trainJob: {
          type: 'object',
          description: 'The TrainJob (type trainjob); its image and command come from the chart.',
          properties: {
            runtime: {
              type: 'string',
              description: "ClusterTrainingRuntime the TrainJob references (default: the chart's).",
              minLength: 1,
            },
            numNodes: intIn('Nodes of the TrainJob.', 1, 1024, 1),
          },
        },
      },
    },
  },
};

export const rlhfRunSpecSchema: SchemaNode = {
  type: 'object',
  description:
    'Online iterative RLHF (RLHF Workflow, arXiv 2405.07863): T iterations of generate, judge, pair, DPO and evaluate.',
  required: ['judge'],
  'x-kubernetes-validations': [
    {
      rule: "self.judge.type == 'gold' || has(self.judge.model) || has(self.setup)",
      message: 'judge.model is required unless judge.type is gold or setup trains the judge',
    },
    { rule: 'has(self.setup) || has(self.policy)', message: 'policy is required unless setup trains it' },
    {
      rule: 'has(self.setup) || (has(self.prompts) && has(self.prompts.dataset))',
      message: 'prompts.dataset is required unless setup synthesizes it',
    },
    ...engineCelRules,
  ],
  properties: {
    setup: setupSchema,
    policy: {
      type: 'object',
      description: 'The initial policy pi_0 (usually an SFT model).',
      required: ['model'],
      properties: { model: modelUri('Model directory of pi_0.') },
    },
    reference: {
      type: 'string',
      description:
        'DPO reference: initial keeps pi_0 (the paper); previous uses pi_{t-1} (the public scripts).',
      enum: ['initial', 'previous'],
      default: 'initial',
    },
    judge: {
      type: 'object',
      description: 'What scores the responses.',
      properties: {
        type: {
          type: 'string',
          description:
            'reward: a Bradley-Terry reward model; preference: a pairwise preference model (tournament); gold: the task gold reward (experiments only).',
          enum: ['reward', 'preference', 'gold'],
          default: 'reward',
        },
        model: modelUri('Reward or preference model directory (not used by gold).'),
        lengthPenalty: {
          type: 'number',
          description:
            'Length penalty lambda per character: r(x, y) - lambda * chars(y) (paper: 0.001); "auto" fits it on SFT samples by regressing the reward on gold and length over the grammatical ones.',
          minimum: 0,
          'x-rlhf-or-words': ['auto'],
          default: 0,
        },
        task: {
          type: 'string',
          description: 'Gold reward of a built-in task, for type gold and for evaluation.',
          enum: ['sentiment'],
        },
      },
    },
    prompts: {
      type: 'object',
      description: 'Prompt datasets.',
      properties: {
        dataset: uri('Training prompts, JSONL {"prompt"} rows.'),
        perIteration: {
          type: 'integer',
          description: 'Prompts drawn per iteration (seeded, without replacement across iterations).',
          minimum: 1,
          maximum: 10_000_000,
          default: 256,
        },
        eval: uri('Held-out prompts for evaluation.'),
      },
    },
    iterations: {
      type: 'integer',
      description: 'Online iterations T.',
      minimum: 1,
      maximum: 100,
      default: 3,
    },
    generation: {
      type: 'object',
      description: 'Sampling of responses (paper: n = 8, temperature 1.0, no top-k/top-p).',
      properties: {
        samplesPerPrompt: {
          type: 'integer',
          description: 'Responses per prompt n.',
          minimum: 2,
          maximum: 1024,
          default: 8,
        },
        temperature: {
          type: 'number',
          description: 'Sampling temperature.',
          minimum: 0,
          maximum: 100,
          default: 1,
        },
        topP: {
          type: 'number',
          description: 'Nucleus mass in (0, 1].',
          minimum: 0,
          exclusiveMinimum: true,
          maximum: 1,
          default: 1,
        },
        topK: {
          type: 'integer',
          description: 'Keep the k likeliest tokens; 0 keeps all.',
          minimum: 0,
          default: 0,
        },
        maxNewTokens: {
          type: 'integer',
          description: 'Most tokens per response.',
          minimum: 1,
          maximum: 65536,
          default: 48,
        },
        seed: {
          type: 'integer',
          description: 'Seed of prompt selection and sampling.',
          minimum: 0,
          default: 42,
        },
      },
    },
    pairs: {
      type: 'object',
      description: 'How chosen/rejected pairs are built from the judged responses.',
      properties: {
        strategy: {
          type: 'string',
          description:
            'maxMin: best vs worst (the paper); maxRandom: best vs a random other; random: two random.',
          enum: ['maxMin', 'maxRandom', 'random'],
          default: 'maxMin',
        },
        dataset: uri(
          'Offline DPO (the offline baseline of the paper): each iteration trains on the next prompts.perIteration labelled pairs of this JSONL dataset ({"prompt", "chosen", "rejected"} rows, in file order, wrapping around) instead of generating and judging; the judge still scores the evaluation.',
        ),
      },
    },
    dpo: {
      type: 'object',
      description: 'DPO training of each iteration (paper defaults for an 8B model).',
      properties: {
        beta: {
          type: 'number',
          description: 'KL strength beta.',
          minimum: 0,
          exclusiveMinimum: true,
          default: 0.1,
        },
        learningRate: {
          type: 'number',
          description: 'Peak learning rate.',
          minimum: 0,
          exclusiveMinimum: true,
          maximum: 10,
          default: 5e-7,
        },
        epochs: {
          type: 'number',
          description: 'Passes over each iteration pair set.',
          minimum: 0,
          exclusiveMinimum: true,
          maximum: 1000,
          default: 2,
        },
        batchSize: { type: 'integer', description: 'Global batch size in pairs.', minimum: 1, default: 128 },
        gradAccum: {
          type: 'integer',
          description: 'Micro-batches per optimizer step.',
          minimum: 1,
          default: 1,
        },
        warmupRatio: {
          type: 'number',
          description: 'Share of steps in linear warmup.',
          minimum: 0,
          maximum: 1,
          default: 0.03,
        },
        schedule: {
          type: 'string',
          description: 'Learning-rate schedule.',
          enum: ['cosine', 'linear', 'constant'],
          default: 'cosine',
        },
        lossType: {
          type: 'string',
          description: 'DPO loss.',
          enum: ['sigmoid', 'ipo', 'hinge'],
          default: 'sigmoid',
        },
        labelSmoothing: {
          type: 'number',
          description: 'Label smoothing of the sigmoid loss.',
          minimum: 0,
          maximum: 0.5,
          exclusiveMaximum: true,
          default: 0,
        },
        nllWeight: {
          type: 'number',
          description: 'Weight of the NLL term on chosen responses (RPO-style); 0 reproduces the paper.',
          minimum: 0,
          default: 0,
        },
        maxGradNorm: {
          type: 'number',
          description: 'Global gradient-norm clip; 0 turns it off.',
          minimum: 0,
          default: 1,
        },
      },
    },
    engines: enginesSchema,
    placement: {
      type: 'object',
      description: 'Cluster placement of the stage workers.',
      properties: {
        generate: placementGroup('generation'),
        judge: placementGroup('judging'),
        train: placementGroup('DPO training'),
        evaluate: placementGroup('evaluation'),
        schedulerName: { type: 'string', description: 'Scheduler for the pods (e.g. a gang scheduler).' },
        queue: { type: 'string', description: 'Queue name for a gang scheduler (Kueue or Volcano label).' },
        volumes: placementVolumesSchema,
      },
    },
    maxRetries: {
      type: 'integer',
      description: 'Retries of a failed stage Job before the run fails.',
      minimum: 0,
      maximum: 100,
      default: 3,
    },
  },
};

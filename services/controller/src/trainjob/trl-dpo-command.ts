/**
 * The `trl dpo` command line (TRL 1.16, its DPOConfig / ScriptArguments / ModelConfig flags) that trains one
 * iteration the way spec.dpo asks the built-in trainer to. Where the two objectives differ, the mapping says
 * so here or refuses the spec with the field and the fix:
 *
 * - batch: spec.dpo.batchSize is the global batch in pairs and gradAccum its micro-batches, so
 *   per_device_train_batch_size = batchSize / (gradAccum x processes); a batch that does not split evenly
 *   is refused (TRL would train on another batch size without saying so).
 * - NLL term: TRL has no `rpo_alpha` any more; RPO is `--loss_type sigmoid sft --loss_weights 1 w`. TRL's
 *   `sft` term is the mean negative log-likelihood over every chosen-response token of the micro-batch (one
 *   mean over all tokens, not a mean of per-sequence means), which is what the built-in `nllWeight` term
 *   computes over its micro-batch, so w = nllWeight exactly. Both divide by tokens, neither by pairs.
 * - label smoothing: TRL 1.16's `sigmoid` loss has no label smoothing (its `label_smoothing` only feeds the
 *   `robust` and `exo_pair` losses, which are other estimators), so spec.dpo.labelSmoothing > 0 is refused.
 * - ipo: TRL divides each log-ratio by the completion's token count before squaring (the IPO authors'
 *   normalised form); the built-in IPO uses sequence sums. beta means the same, the scale of h differs.
 * - sigmoid and hinge: the same formulas on sequence-summed log-ratios.
 * - schedule: linear and cosine are Hugging Face's schedules of the same shape; constant is
 *   `constant_with_warmup` (constant after the same linear warmup). The warmup ratio goes to
 *   --warmup_steps, which transformers reads as a ratio when below 1.
 * - reference: `trl dpo` loads its reference model from --model_name_or_path, the policy it starts from.
 *   That is spec.reference `previous`; `initial` matches only while the starting policy is pi_0 (the first
 *   iteration), so a later iteration with `initial` is refused here.
 */
import { invalidArgument } from '@rlhf/platform';
import type { RlhfRunSpec } from '@rlhf/run-spec';

export interface TrlDpoPaths {
  /** HF checkpoint directory of the policy the iteration starts from. */
  model: string;
  /** HF checkpoint directory of the iteration's reference model. */
  reference: string;
  /** Directory holding train.jsonl in TRL's preference format (trl-pairs.ts). */
  pairs: string;
  /** Where TRL saves the trained checkpoint. */
  output: string;
}

export interface TrlDpoOptions {
  /** Training processes in all: nodes x processes per node (one per GPU, one on a CPU node). */
  processes: number;
  /** Run on CPUs (no GPU asked for the train stage). */
  cpu: boolean;
  seed: number;
  /** Longest prompt + response in tokens (the model's context); TRL truncates beyond it. */
  maxLength?: number;
}

type Dpo = RlhfRunSpec['dpo'];

const scheduleOf: Record<Dpo['schedule'], string> = {
  linear: 'linear',
  cosine: 'cosine',
  constant: 'constant_with_warmup',
};

/** Numbers as Python's float parser reads them back exactly. */
const num = (x: number): string => String(x);

/** The arguments after `trl dpo`. */
export function trlDpoArgs(spec: Pick<RlhfRunSpec, 'dpo'>, paths: TrlDpoPaths, o: TrlDpoOptions): string[] {
  const d = spec.dpo;
  if (paths.reference !== paths.model) {
    throw invalidArgument(
      'spec.reference',
      `trl dpo takes its reference model from the policy it starts from (${paths.model}), but this iteration's reference is ${paths.reference}`,
      'set spec.reference: previous with engines.train trainjob, or train with engines.train builtin',
    );
  }
  if (d.labelSmoothing > 0) {
    throw invalidArgument(
      'spec.dpo.labelSmoothing',
      `TRL's sigmoid DPO loss has no label smoothing, got ${d.labelSmoothing}`,
      'set spec.dpo.labelSmoothing: 0 with engines.train trainjob',
    );
  }
  if (!(Number.isInteger(o.processes) && o.processes >= 1)) {
    throw invalidArgument(
      'spec.engines.train.trainJob.numNodes',
      `processes must be >= 1, got ${o.processes}`,
      'set numNodes to 1 or more',
    );
  }
  const split = d.gradAccum * o.processes;
  if (d.batchSize % split !== 0) {
    throw invalidArgument(
      'spec.dpo.batchSize',
      `the global batch of ${d.batchSize} pairs does not split into ${d.gradAccum} micro-batches on each of ${o.processes} training processes`,
      `use a multiple of ${split}`,
    );
  }
  if (d.warmupRatio >= 1) {
    throw invalidArgument(
      'spec.dpo.warmupRatio',
      `transformers reads a warmup of 1 or more as a step count, got ${d.warmupRatio}`,
      'use a ratio below 1',
    );
  }
  const args = [
    '--model_name_or_path',
    paths.model,
    '--dataset_name',
    paths.pairs,
    '--dataset_train_split',
    'train',
    '--output_dir',
    paths.output,
    '--beta',
    num(d.beta),
    '--learning_rate',
    num(d.learningRate),
    '--num_train_epochs',
    num(d.epochs),
    '--per_device_train_batch_size',
    String(d.batchSize / split),
    '--gradient_accumulation_steps',
    String(d.gradAccum),
    '--lr_scheduler_type',
    scheduleOf[d.schedule],
    '--warmup_steps',
    num(d.warmupRatio),
    '--max_grad_norm',
    num(d.maxGradNorm),
    '--seed',
    String(o.seed),
    ...(d.nllWeight > 0
      ? ['--loss_type', d.lossType, 'sft', '--loss_weights', '1', num(d.nllWeight)]
      : ['--loss_type', d.lossType]),
    // The checkpoint must load as it was exported: float32, no hub, no trackers, one save at the end.
    '--dtype',
    'float32',
    '--report_to',
    'none',
    '--push_to_hub',
    'false',
    '--save_strategy',
    'no',
    '--logging_steps',
    '1',
    '--logging_first_step',
    'true',
  ];
  if (o.maxLength !== undefined) args.push('--max_length', String(o.maxLength));
  if (o.cpu) args.push('--use_cpu', 'true');
  return args;
}

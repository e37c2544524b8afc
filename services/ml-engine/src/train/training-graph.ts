/**
 * Training graphs: the decoder of `model/llama-graph.ts` with every weight as a graph input, a loss from
 * `losses/`, and (unless only a forward pass is asked for) the gradient of the loss with respect to every
 * weight as an output named `grad.<weight name>`. One ORT run computes loss, metrics and all gradients.
 *
 * Data inputs (rows right-padded; positions are 0..seq-1):
 *   input_ids [batch, seq] int64, attention_mask [batch, seq] int64, and per objective:
 *   lm   (SFT, preference model):  labels [batch, seq] int64, loss_mask [batch, seq] float
 *   rm   (Bradley-Terry):          nothing more; rows are chosen first, then rejected
 *   dpo:                           labels, loss_mask (response tokens), reference_logps [batch], nll_mask
 *   logp (no gradients):           labels, loss_mask; outputs sequence_logps [batch], token_logps
 */
import { backward } from '../autodiff/backward.js';
import { EngineError } from '../engine-error.js';
import { bradleyTerryLoss } from '../losses/bradley-terry.js';
import { maskedNll, sequenceLogprobs, tokenLogprobs } from '../losses/causal-lm.js';
import { type DpoOptions, defaultDpoOptions, dpoLoss } from '../losses/dpo.js';
import { headTypeOf, type LlamaConfig } from '../model/config.js';
import { decoder, lmHead, scalarHead } from '../model/llama-graph.js';
import { type WeightSpec, weightSpecs } from '../model/weights.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import type { Value } from '../onnx/graph-types.js';
import type { FloatDType } from '../onnx/tensor-data.js';

export type Objective = 'lm' | 'rm' | 'dpo' | 'logp';

export interface TrainingGraphOptions {
  objective: Objective;
  dpo?: DpoOptions;
  /** float64 builds exist for gradient checks. */
  float?: FloatDType;
}

export interface TrainingGraph {
  graph: GraphBuilder;
  params: WeightSpec[];
  /** Names of the non-weight inputs the caller feeds. */
  dataInputs: string[];
  /** Scalar metric outputs, `loss` first. */
  metrics: string[];
  /** Output name of a weight's gradient. */
  gradName(param: string): string;
}

export const gradName = (param: string): string => `grad.${param}`;

function positions(g: GraphBuilder, inputIds: Value): Value {
  const seq = g.squeeze(g.op('Shape', [inputIds], { start: 1, end: 2 }), [0]);
  const range = g.op(
    'Range',
    [g.constant([0], [], 'int64'), seq, g.constant([1], [], 'int64')],
    {},
    { shapes: [['seq']], dtypes: ['int64'] },
  );
  return g.unsqueeze(range, [0]);
}

export interface TrainingLoss {
  /** One-element loss, or null for the forward-only `logp` objective. */
  loss: Value | null;
  /** Weight inputs, in `weightSpecs` order. */
  weights: Value[];
  params: WeightSpec[];
  dataInputs: string[];
  metrics: Record<string, Value>;
  /** Forward outputs of the `logp` objective. */
  logps?: { sequence: Value; token: Value };
}

function checkHead(c: LlamaConfig, objective: Objective): void {
  if ((objective === 'rm') === (headTypeOf(c) === 'scalar')) return;
  throw new EngineError(
    'FAILED_PRECONDITION',
    objective === 'rm'
      ? 'reward-model training needs a model with a scalar head (LlamaForSequenceClassification)'
      : `${objective} needs a model with an LM head, but this is a reward model`,
    {
      field: 'architectures',
      fix:
        objective === 'rm'
          ? 'initialise the reward model with architectures ["LlamaForSequenceClassification"]'
          : 'pass a policy (LlamaForCausalLM) model',
    },
  );
}

/** Adds weights, data inputs, the forward pass and the loss of `objective` to `g`. */
export function addTrainingLoss(
  g: GraphBuilder,
  c: LlamaConfig,
  objective: Objective,
  dpo: DpoOptions = defaultDpoOptions,
): TrainingLoss {
  checkHead(c, objective);
  const params = weightSpecs(c);
  const weightValues = params.map((p) => g.input(p.name, g.float, p.shape));
  const byName = new Map(params.map((p, i) => [p.name, weightValues[i] as Value]));
  const w = (name: string): Value => byName.get(name) as Value;

  const inputIds = g.input('input_ids', 'int64', ['batch', 'seq']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch', 'seq']);
  const dataInputs = ['input_ids', 'attention_mask'];
  const { hidden } = decoder(g, c, w, { inputIds, attentionMask, positionIds: positions(g, inputIds) });
  const base = { weights: weightValues, params, dataInputs };

  if (objective === 'rm') {
    const bt = bradleyTerryLoss(g, scalarHead(g, c, w, hidden, inputIds, attentionMask));
    return { ...base, loss: bt.loss, metrics: bt.metrics };
  }
  const labels = g.input('labels', 'int64', ['batch', 'seq']);
  const lossMask = g.input('loss_mask', g.float, ['batch', 'seq']);
  dataInputs.push('labels', 'loss_mask');
  const tokenLogp = tokenLogprobs(g, lmHead(g, c, w, hidden, inputIds), labels);
  const seqLogp = sequenceLogprobs(g, tokenLogp, lossMask);
  if (objective === 'logp')
    return { ...base, loss: null, metrics: {}, logps: { sequence: seqLogp, token: tokenLogp } };
  if (objective === 'lm') {
    const nll = maskedNll(g, tokenLogp, lossMask);
    return { ...base, loss: nll.loss, metrics: { tokens: nll.tokens } };
  }
  const referenceLogps = g.input('reference_logps', g.float, ['batch']);
  const nllMask = g.input('nll_mask', g.float, ['batch', 'seq']);
  dataInputs.push('reference_logps', 'nll_mask');
  const r = dpoLoss(g, dpo, { policyLogps: seqLogp, referenceLogps, tokenLogps: tokenLogp, nllMask });
  return { ...base, loss: r.loss, metrics: r.metrics };
}

export function buildTrainingGraph(c: LlamaConfig, options: TrainingGraphOptions): TrainingGraph {
  const g = new GraphBuilder({ float: options.float ?? 'float32', name: `train-${options.objective}` });
  const t = addTrainingLoss(g, c, options.objective, options.dpo);
  if (t.loss === null || t.logps) {
    g.output(t.logps?.sequence as Value, 'sequence_logps');
    g.output(t.logps?.token as Value, 'token_logps');
    return { graph: g, params: t.params, dataInputs: t.dataInputs, metrics: [], gradName };
  }
  g.output(t.loss, 'loss');
  for (const [name, v] of Object.entries(t.metrics)) g.output(v, name);
  const grads = backward(g, t.loss, t.weights, { unused: 'zeros' });
  t.params.forEach((p, i) => {
    g.output(grads[i] as Value, gradName(p.name));
  });
  return {
    graph: g,
    params: t.params,
    dataInputs: t.dataInputs,
    metrics: ['loss', ...Object.keys(t.metrics)],
    gradName,
  };
}

/**
 * The inference graph stored in a model directory as `model.onnx`: weights are initializers under their HF
 * names. The LM head uses the optimum decoder signature (input_ids, attention_mask, position_ids,
 * past_key_values.N.key|value -> logits, present.N.key|value) and its dimension names (`ONNX_DIM`), so
 * the KV cache works as other ONNX tools expect; the scalar head takes input_ids and attention_mask and returns `scores`.
 *
 * RMSNorm, RoPE and attention are the standard fused ops of opset 23 (RMSNormalization, RotaryEmbedding,
 * Attention), so model.onnx stays plain ONNX for any runtime that implements opset 23, and a decode step
 * runs far fewer kernels than the training graph's decomposition of the same math.
 *
 * Besides the optimum outputs, the LM graph returns `next_token_probs` [batch, vocab]: the softmax of each
 * row's last logits, the distribution the next token is drawn from at temperature 1. ORT's vectorised exp
 * makes it a few microseconds per step, where the same exps in JavaScript cost about 8 µs per row
 * (sampling/sample-token.ts uses it when a session has it; model directories written before it still work).
 */
import { addDims } from '../onnx/dims.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import type { Value } from '../onnx/graph-types.js';
import { headDim, headTypeOf, type LlamaConfig } from './config.js';
import { decoder, type KvPair, lmHead, scalarHead } from './llama-graph.js';
import { checkWeights, type Weights, weightSpecs } from './weights.js';

/**
 * Dimension names of model.onnx's inputs and outputs, optimum's for decoder exports: a consumer that builds
 * the empty past from the declared shapes sets every `*past_sequence_length` dim to 0 and `batch_size` to
 * its batch.
 */
export const ONNX_DIM = {
  batch: 'batch_size',
  sequence: 'sequence_length',
  past: 'past_sequence_length',
  total: 'total_sequence_length',
} as const;

/** The fused ops (RMSNormalization, RotaryEmbedding, Attention) are opset 23; ORT 1.30 runs up to 26. */
export const INFERENCE_OPSET = 23;

/** The LM graph's extra output: softmax of each row's last-position logits, [batch, vocab]. */
export const NEXT_TOKEN_PROBS = 'next_token_probs';

export interface InferenceGraphOptions {
  /**
   * Standard opset-23 fused ops for RMSNorm, RoPE and attention (default true): a one-token decode step runs
   * about a third of the kernels (scripts/bench-decode-step.ts counts them). false builds the training
   * graphs' decomposed ops, for comparisons.
   */
  fused?: boolean;
}

export function buildInferenceGraph(
  c: LlamaConfig,
  weights: Weights,
  o: InferenceGraphOptions = {},
): GraphBuilder {
  const style = { fused: o.fused !== false };
  checkWeights(c, weights, 'weights');
  const g = new GraphBuilder({ float: 'float32', name: 'llama' });
  const values = new Map<string, Value>();
  for (const spec of weightSpecs(c))
    values.set(spec.name, g.initializer(spec.name, weights.get(spec.name) as Float32Array, spec.shape));
  const w = (name: string): Value => {
    const v = values.get(name);
    if (!v) throw new Error(`no parameter ${name}`);
    return v;
  };
  const inputIds = g.input('input_ids', 'int64', [ONNX_DIM.batch, ONNX_DIM.sequence]);
  if (headTypeOf(c) === 'scalar') {
    const attentionMask = g.input('attention_mask', 'int64', [ONNX_DIM.batch, ONNX_DIM.sequence]);
    const range = g.op(
      'Range',
      [
        g.constant([0], [], 'int64'),
        g.squeeze(g.op('Shape', [inputIds], { start: 1, end: 2 }), [0]),
        g.constant([1], [], 'int64'),
      ],
      {},
      { shapes: [[ONNX_DIM.sequence]], dtypes: ['int64'] },
    );
    // RotaryEmbedding takes position ids per row, [batch, seq].
    const positions = g.op(
      'Expand',
      [g.unsqueeze(range, [0]), g.shapeOf(inputIds)],
      {},
      { shapes: [[ONNX_DIM.batch, ONNX_DIM.sequence]] },
    );
    const { hidden } = decoder(g, c, w, { inputIds, attentionMask, positionIds: positions }, style);
    g.output(scalarHead(g, c, w, hidden, inputIds, attentionMask, style), 'scores');
    return g;
  }
  // Declared with optimum's name; inside, the mask's length is the cache's, past + sequence (what the
  // builder's shape checks compare the attention scores with), which Identity states without a copy.
  const attentionMask = g.op(
    'Identity',
    [g.input('attention_mask', 'int64', [ONNX_DIM.batch, ONNX_DIM.total])],
    {},
    { shapes: [[ONNX_DIM.batch, addDims(ONNX_DIM.past, ONNX_DIM.sequence)]] },
  );
  const positionIds = g.input('position_ids', 'int64', [ONNX_DIM.batch, ONNX_DIM.sequence]);
  const past: KvPair[] = [];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const shape = [ONNX_DIM.batch, c.num_key_value_heads, ONNX_DIM.past, headDim(c)];
    past.push({
      key: g.input(`past_key_values.${i}.key`, 'float32', shape),
      value: g.input(`past_key_values.${i}.value`, 'float32', shape),
    });
  }
  const { hidden, presents } = decoder(g, c, w, { inputIds, attentionMask, positionIds, past }, style);
  const logits = lmHead(g, c, w, hidden, inputIds, style);
  g.output(logits, 'logits');
  const last = g.op(
    'Gather',
    [logits, g.constant([-1], [], 'int64')],
    { axis: 1 },
    { shapes: [[ONNX_DIM.batch, c.vocab_size]] },
  );
  g.output(g.softmax(last), NEXT_TOKEN_PROBS);
  presents.forEach((p, i) => {
    g.output(p.key, `present.${i}.key`);
    g.output(p.value, `present.${i}.value`);
  });
  return g;
}

/** The serialized inference model, ready to write as model.onnx or to load into an ORT session. */
export function buildInferenceModel(
  c: LlamaConfig,
  weights: Weights,
  o: InferenceGraphOptions = {},
): Uint8Array {
  return buildInferenceGraph(c, weights, o).toBytes({ opset: INFERENCE_OPSET });
}

/**
 * One row's decode loop as a single ONNX model: an ONNX `Loop` whose body is the model's own inference graph
 * (model.onnx, optimum signature) followed by the pick of the next token, so a run of up to `trips` tokens is
 * one ORT call instead of one call a token. Half of a batch-1 decode step driven from TypeScript is the call
 * (docs/BENCHMARKS.md); inside the Loop a small model's cached token costs about half as much.
 *
 * The pick is the one `sampleToken` makes from the graph's own softmax, with the same arithmetic. Greedy
 * (one model) is the first largest logit (ArgMax). Sampling at temperature 1 with no top-k/top-p (another
 * model) is the first token whose float64 running sum of probabilities (CumSum of the float32 probabilities
 * cast to float64: a sequential sum, as in TypeScript) reaches u times their total, u drawn ahead from the row's
 * own random stream. The body's logits and probabilities are the step session's bit for bit, so the loop picks
 * what generate() picks token by token (row-loop.test.ts checks it over many seeds).
 *
 * A lone row has no padding, so the trip leaves out model.onnx's attention mask (see `unmasked`): its Attention
 * nodes get no additive mask, which would be all zeros, and the mask is not carried. (A graph that applies the
 * mask otherwise, model.onnx from before the fused ops, keeps it: input `mask0` [1, past + 1], all ones.)
 *
 * Inputs: `trips` (int64 scalar), `go` (bool scalar, true), `ids0` [1, 1] (the row's last token, not yet run),
 * `pos0` [1, 1] (that token's position), the pasts as `start.past_key_values.N.key|value` [1, kv, past, hd]
 * (the row's own tokens, no padding columns), `uniforms` [trips] float64 (sampling only: one per trip),
 * `goes_on` [vocab] bool (false for tokens that end the row: the loop stops after a trip that picks one).
 * Outputs: `tokens` and `token_probs` [trips run, 1, 1] (each trip's pick and its probability, whose log is
 * the log-probability sampleToken gives), and the presents after the last trip as `final.present.N.key|value`.
 */
import type { LlamaConfig } from '../model/config.js';
import { headDim } from '../model/config.js';
import { NEXT_TOKEN_PROBS } from '../model/inference-graph.js';
import { decodeModel } from '../onnx/onnx-decode.js';
import { encodeModel } from '../onnx/onnx-encode.js';
import { DataType, type ModelProto, type NodeProto, type ValueInfoProto } from '../onnx/onnx-types.js';
import { graphAttribute, int64Tensor, intAttribute, nodeMaker, valueInfo } from '../onnx/proto-nodes.js';
import { cacheNames } from './kv-cache.js';

/** The row loop's input for a past (`past_key_values.N.key|value`): the body's own name is taken. */
export const rowLoopStart = (past: string): string => `start.${past}`;
/** The row loop's output for a present after its last trip (`present.N.key|value`). */
export const rowLoopFinal = (present: string): string => `final.${present}`;

/**
 * The trip's nodes for a lone row, which has no padding: its attention mask is all ones, so the additive mask
 * model.onnx builds from it is all zeros, and its Attention nodes go without one (`is_causal` alone, the same
 * scores without adding zeros). Then every node whose outputs nothing in `outputs` needs is dropped (the
 * mask's own), which spares a trip those kernels and the mask its place in the carried state.
 */
function unmasked(nodes: readonly NodeProto[], outputs: readonly string[]): NodeProto[] {
  const needed = new Set(outputs);
  const kept: NodeProto[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i] as NodeProto;
    const node = n.opType === 'Attention' && n.input.length > 3 ? { ...n, input: n.input.with(3, '') } : n;
    if (!node.output.some((o) => needed.has(o))) continue;
    kept.push(node);
    for (const x of node.input) if (x !== '') needed.add(x);
  }
  return kept.reverse();
}

/** How the row loop picks: the first largest logit, or inverse-CDF sampling at temperature 1. */
export type RowLoopMode = 'greedy' | 'sample';

/** The row loop's model bytes, from the inference model (model.onnx) of `config`, picking by `mode`. */
export function rowLoopModel(
  inference: Uint8Array | ModelProto,
  config: LlamaConfig,
  mode: RowLoopMode,
): Uint8Array {
  const base = inference instanceof Uint8Array ? decodeModel(inference) : inference;
  const names = cacheNames(config.num_hidden_layers);
  const vocab = config.vocab_size;
  const pastInfo = (name: string) =>
    valueInfo(name, DataType.FLOAT, [1, config.num_key_value_heads, 'past', headDim(config)]);
  const node = nodeMaker('row_loop');
  const probs = NEXT_TOKEN_PROBS;
  // The last position's logits, which the graph gathers for its softmax.
  const softmax = base.graph.node.find((n) => n.opType === 'Softmax' && n.output[0] === probs);
  if (!softmax?.input[0]) throw new Error(`the inference graph has no Softmax giving ${probs}`);
  const lastLogits = softmax.input[0];
  const argmax = (x: string) =>
    node('ArgMax', [x], ['next_ids'], [intAttribute('axis', 1), intAttribute('keepdims', 1)]);
  const pick =
    mode === 'greedy'
      ? [argmax(lastLogits)]
      : [
          // The first index whose running float64 sum reaches u times the total: the running sum does not
          // decrease, so it is the first index where min(running, threshold) is largest. (Should that be a
          // token of probability 0, with u = 0 exactly, the caller sees probability 0 and redoes the row.)
          node('Cast', [probs], ['probs64'], [intAttribute('to', DataType.DOUBLE)]),
          node('CumSum', ['probs64', 'one'], ['running']),
          node('Slice', ['running', 'last_index', 'vocab_end', 'one_axis'], ['total']),
          node('Gather', ['uniforms', 'iter'], ['u']),
          node('Mul', ['total', 'u'], ['threshold']),
          node('Min', ['running', 'threshold'], ['capped']),
          argmax('capped'),
        ];
  const trip = [
    ...pick,
    node('GatherElements', [probs, 'next_ids'], ['token_prob'], [intAttribute('axis', 1)]),
    // Carried to the next trip, and whether there is one.
    node('Add', ['position_ids', 'one_11'], ['pos_next']),
    // [1, 1]: ORT takes any one-element condition, which spares a Reshape a trip.
    node('Gather', ['goes_on', 'next_ids'], ['cond_out']),
  ];
  const constants = [
    int64Tensor('one', [], [1]),
    int64Tensor('one_axis', [1], [1]),
    int64Tensor('one_11', [1, 1], [1]),
    int64Tensor('last_index', [1], [vocab - 1]),
    int64Tensor('vocab_end', [1], [vocab]),
  ];
  const outputs = ['cond_out', 'next_ids', 'pos_next', 'token_prob', ...names.present];
  let nodes = unmasked([...base.graph.node, ...trip], outputs);
  // A graph that applies the mask other than through Attention nodes (model.onnx before the fused ops) keeps
  // it: all ones, carried and grown by a column a trip.
  const masked = nodes.some((n) => n.input.includes('attention_mask'));
  if (masked)
    nodes = [
      ...base.graph.node,
      ...trip,
      node('Concat', ['attention_mask', 'one_11'], ['mask_next'], [intAttribute('axis', 1)]),
    ];
  const maskIn = masked ? [valueInfo('attention_mask', DataType.INT64, [1, 'L'])] : [];
  const carriedIn: ValueInfoProto[] = [
    valueInfo('input_ids', DataType.INT64, [1, 1]),
    ...maskIn,
    valueInfo('position_ids', DataType.INT64, [1, 1]),
    ...names.past.map(pastInfo),
  ];
  const body = {
    name: 'row_loop_trip',
    node: nodes,
    initializer: [...base.graph.initializer, ...constants],
    input: [valueInfo('iter', DataType.INT64, []), valueInfo('cond_in', DataType.BOOL, []), ...carriedIn],
    output: [
      valueInfo('cond_out', DataType.BOOL, [1, 1]),
      valueInfo('next_ids', DataType.INT64, [1, 1]),
      ...(masked ? [valueInfo('mask_next', DataType.INT64, [1, 'L1'])] : []),
      valueInfo('pos_next', DataType.INT64, [1, 1]),
      ...names.present.map(pastInfo),
      // The pick again, as the scan output: the same value twice spares an Identity a trip.
      valueInfo('next_ids', DataType.INT64, [1, 1]),
      valueInfo('token_prob', DataType.FLOAT, [1, 1]),
    ],
    valueInfo: [],
  };
  const finals = [
    'ids_final',
    ...(masked ? ['mask_final'] : []),
    'pos_final',
    ...names.present.map(rowLoopFinal),
  ];
  const graph = {
    name: 'row_loop',
    node: [
      node(
        'Loop',
        ['trips', 'go', 'ids0', ...(masked ? ['mask0'] : []), 'pos0', ...names.past.map(rowLoopStart)],
        [...finals, 'tokens', 'token_probs'],
        [graphAttribute('body', body)],
      ),
    ],
    initializer: [],
    input: [
      valueInfo('trips', DataType.INT64, []),
      valueInfo('go', DataType.BOOL, []),
      valueInfo('ids0', DataType.INT64, [1, 1]),
      ...(masked ? [valueInfo('mask0', DataType.INT64, [1, 'L'])] : []),
      valueInfo('pos0', DataType.INT64, [1, 1]),
      ...names.past.map((n) => pastInfo(rowLoopStart(n))),
      ...(mode === 'sample' ? [valueInfo('uniforms', DataType.DOUBLE, ['trips'])] : []),
      valueInfo('goes_on', DataType.BOOL, [vocab]),
    ],
    output: [
      valueInfo('tokens', DataType.INT64, ['run', 1, 1]),
      valueInfo('token_probs', DataType.FLOAT, ['run', 1, 1]),
      ...names.present.map((n) => pastInfo(rowLoopFinal(n))),
    ],
    valueInfo: [],
  };
  return encodeModel({ ...base, graph });
}

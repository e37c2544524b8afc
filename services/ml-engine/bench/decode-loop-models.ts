/**
 * Greedy batch-1 generation with the whole decode loop inside one ONNX Runtime call: an ONNX `Loop` around the
 * model's inference graph, one token a trip on the KV cache (the presents carried to the next trip), or the
 * whole sequence again every trip (empty pasts). For measuring what the per-token call costs a loop driven
 * from TypeScript (`rlhf bench engine`, scripts/bench-decode-loop.ts). The product's own Loop, which samples as
 * generate() does, is sampling/row-loop-graph.ts.
 */
import { headDim, type LlamaConfig } from '../src/model/config.js';
import { buildInferenceModel } from '../src/model/inference-graph.js';
import type { Weights } from '../src/model/weights.js';
import { decodeModel } from '../src/onnx/onnx-decode.js';
import { encodeModel } from '../src/onnx/onnx-encode.js';
import {
  AttributeType,
  DataType,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from '../src/onnx/onnx-types.js';
import { graphAttribute, int64Tensor, intAttribute, nodeMaker, valueInfo } from '../src/onnx/proto-nodes.js';

export interface DecodeLoopModels {
  /**
   * Inputs `trips` (int64 scalar), `go` (bool scalar), `ids0` [1, 1] (the token after the prompt), `mask0`
   * [1, L], `pos0` [1, 1] and `past_key_values.N.key|value_0` (the prompt's presents); output `tokens`
   * [trips, 1, 1], the next `trips` greedy tokens.
   */
  cached: Uint8Array;
  /** Inputs `trips`, `go` and `prompt` [1, L]; output `tokens` [trips, 1, 1], the next `trips` greedy tokens. */
  recompute: Uint8Array;
  /** The cache's feed names (`past_key_values.N.key|value`) and the matching output names (`present.*`). */
  pastNames: string[];
  presentNames: string[];
}

export function decodeLoopModels(config: LlamaConfig, weights: Weights): DecodeLoopModels {
  const base = decodeModel(buildInferenceModel(config, weights));
  const layers = config.num_hidden_layers;
  const [kvHeads, hd] = [config.num_key_value_heads, headDim(config)];
  const pastNames = Array.from({ length: layers }, (_, i) => [
    `past_key_values.${i}.key`,
    `past_key_values.${i}.value`,
  ]).flat();
  const presentNames = pastNames.map((n) => n.replace('past_key_values', 'present'));
  const node = nodeMaker('loop');
  const pastInfo = (name: string) => valueInfo(name, DataType.FLOAT, [1, kvHeads, 'past', hd]);
  const loopCounters = [valueInfo('iter', DataType.INT64, []), valueInfo('cond_in', DataType.BOOL, [])];

  /** The model's graph inside a Loop body: its nodes and weights, and the step's own nodes after them. */
  function body(
    name: string,
    input: ValueInfoProto[],
    nodes: { before?: NodeProto[]; after: NodeProto[] },
    extraInit: TensorProto[],
    output: ValueInfoProto[],
  ): GraphProto {
    return {
      name,
      node: [...(nodes.before ?? []), ...base.graph.node, ...nodes.after],
      initializer: [...base.graph.initializer, ...extraInit],
      input: [...loopCounters, ...input],
      output,
      valueInfo: [],
    };
  }

  function model(graph: GraphProto): Uint8Array {
    const m: ModelProto = { ...base, graph };
    return encodeModel(m);
  }

  /** One token per iteration on the cache: carried ids [1, 1], mask [1, L], position [1, 1] and the pasts. */
  function cachedLoop(): Uint8Array {
    const b = body(
      'cached_step',
      [
        valueInfo('input_ids', DataType.INT64, [1, 1]),
        valueInfo('attention_mask', DataType.INT64, [1, 'L']),
        valueInfo('position_ids', DataType.INT64, [1, 1]),
        ...pastNames.map(pastInfo),
      ],
      {
        after: [
          node('Gather', ['logits', 'minus_one'], ['last_logits'], [intAttribute('axis', 1)]),
          node(
            'ArgMax',
            ['last_logits'],
            ['next_ids'],
            [intAttribute('axis', 1), intAttribute('keepdims', 1)],
          ),
          node('Concat', ['attention_mask', 'one_11'], ['mask_next'], [intAttribute('axis', 1)]),
          node('Add', ['position_ids', 'one_11'], ['pos_next']),
          node('Identity', ['cond_in'], ['cond_out']),
          node('Identity', ['next_ids'], ['token']),
        ],
      },
      [int64Tensor('minus_one', [], [-1]), int64Tensor('one_11', [1, 1], [1])],
      [
        valueInfo('cond_out', DataType.BOOL, []),
        valueInfo('next_ids', DataType.INT64, [1, 1]),
        valueInfo('mask_next', DataType.INT64, [1, 'L1']),
        valueInfo('pos_next', DataType.INT64, [1, 1]),
        ...presentNames.map(pastInfo),
        valueInfo('token', DataType.INT64, [1, 1]),
      ],
    );
    const outer = ['ids0', 'mask0', 'pos0', ...pastNames.map((n) => `${n}_0`)];
    return model({
      name: 'cached_loop',
      node: [
        node(
          'Loop',
          ['trips', 'go', ...outer],
          ['ids_f', 'mask_f', 'pos_f', ...pastNames.map((n) => `${n}_f`), 'tokens'],
          [graphAttribute('body', b)],
        ),
      ],
      initializer: [],
      input: [
        valueInfo('trips', DataType.INT64, []),
        valueInfo('go', DataType.BOOL, []),
        valueInfo('ids0', DataType.INT64, [1, 1]),
        valueInfo('mask0', DataType.INT64, [1, 'L']),
        valueInfo('pos0', DataType.INT64, [1, 1]),
        ...pastNames.map((n) => pastInfo(`${n}_0`)),
      ],
      output: [valueInfo('tokens', DataType.INT64, ['steps', 1, 1])],
      valueInfo: [],
    });
  }

  /** The whole sequence again every iteration: carried ids [1, L], no past (empty past tensors). */
  function recomputeLoop(): Uint8Array {
    const emptyPasts: TensorProto[] = pastNames.map((name) => ({
      name,
      dims: [1, kvHeads, 0, hd],
      dataType: DataType.FLOAT,
      rawData: new Uint8Array(0),
    }));
    const b = body(
      'recompute_step',
      [valueInfo('ids_all', DataType.INT64, [1, 'L'])],
      {
        before: [
          node('Identity', ['ids_all'], ['input_ids']),
          node('Shape', ['ids_all'], ['ids_shape']),
          node(
            'ConstantOfShape',
            ['ids_shape'],
            ['attention_mask'],
            [{ name: 'value', type: AttributeType.TENSOR, t: int64Tensor('', [1], [1]) }],
          ),
          node('CumSum', ['attention_mask', 'one'], ['positions_from_1']),
          node('Sub', ['positions_from_1', 'one'], ['position_ids']),
        ],
        after: [
          node('Gather', ['logits', 'minus_one'], ['last_logits'], [intAttribute('axis', 1)]),
          node(
            'ArgMax',
            ['last_logits'],
            ['next_ids'],
            [intAttribute('axis', 1), intAttribute('keepdims', 1)],
          ),
          node('Concat', ['ids_all', 'next_ids'], ['ids_next'], [intAttribute('axis', 1)]),
          node('Identity', ['cond_in'], ['cond_out']),
          node('Identity', ['next_ids'], ['token']),
        ],
      },
      [int64Tensor('minus_one', [], [-1]), int64Tensor('one', [], [1]), ...emptyPasts],
      [
        valueInfo('cond_out', DataType.BOOL, []),
        valueInfo('ids_next', DataType.INT64, [1, 'L1']),
        valueInfo('token', DataType.INT64, [1, 1]),
      ],
    );
    // The body's empty pasts are initializers, not inputs: drop them from the inputs the model graph declared.
    return model({
      name: 'recompute_loop',
      node: [node('Loop', ['trips', 'go', 'prompt'], ['ids_f', 'tokens'], [graphAttribute('body', b)])],
      initializer: [],
      input: [
        valueInfo('trips', DataType.INT64, []),
        valueInfo('go', DataType.BOOL, []),
        valueInfo('prompt', DataType.INT64, [1, 'L']),
      ],
      output: [valueInfo('tokens', DataType.INT64, ['steps', 1, 1])],
      valueInfo: [],
    });
  }

  return { cached: cachedLoop(), recompute: recomputeLoop(), pastNames, presentNames };
}

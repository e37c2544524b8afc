/**
 * Greedy generation with the whole decode loop inside one ONNX Runtime call (an ONNX `Loop` around the
 * model's inference graph), with and without the KV cache, against the same two loops driven from TypeScript
 * one `session.run` per token (what `generate()` does). It answers one question of the engine issue: how far
 * the KV-cache speed-up at batch 1 is held back by the cost of each call, when both sides are built the same
 * way. The four ways must give the same tokens; the script checks that before it times anything.
 *
 * Usage: node --import tsx services/ml-engine/scripts/bench-decode-loop.ts [small|medium] [threads] [prompt]
 */
import { configOf, mediumModel, smallModel } from '../src/bench/model-bench.js';
import { median } from '../src/bench/timing.js';
import { headDim } from '../src/model/config.js';
import { buildInferenceModel } from '../src/model/inference-graph.js';
import { initWeights } from '../src/model/weights.js';
import { decodeModel } from '../src/onnx/onnx-decode.js';
import { encodeModel } from '../src/onnx/onnx-encode.js';
import {
  type AttributeProto,
  AttributeType,
  DataType,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from '../src/onnx/onnx-types.js';
import { Rng } from '../src/random/rng.js';
import { inferenceSessionOptions, OrtSession, type TensorValue } from '../src/runtime/ort-session.js';

const which = process.argv[2] === 'medium' ? mediumModel : smallModel;
const threads = Number(process.argv[3] ?? 1);
const PROMPT = Number(process.argv[4] ?? 9);
const NEW = 64;
const REPEATS = 15;

const config = configOf(which);
const weights = initWeights(config, new Rng(3));
const base = decodeModel(buildInferenceModel(config, weights));
const layers = config.num_hidden_layers;
const [kvHeads, hd] = [config.num_key_value_heads, headDim(config)];
const pastNames = Array.from({ length: layers }, (_, i) => [
  `past_key_values.${i}.key`,
  `past_key_values.${i}.value`,
]).flat();
const presentNames = pastNames.map((n) => n.replace('past_key_values', 'present'));

let counter = 0;
const node = (
  opType: string,
  input: string[],
  output: string[],
  attribute: AttributeProto[] = [],
): NodeProto => ({
  name: `loop_${opType}_${counter++}`,
  opType,
  domain: '',
  input,
  output,
  attribute,
});
const int = (name: string, i: number): AttributeProto => ({ name, type: AttributeType.INT, i });
const int64s = (name: string, dims: number[], values: number[]): TensorProto => ({
  name,
  dims,
  dataType: DataType.INT64,
  int64Data: values.map(BigInt),
});
const info = (name: string, elemType: number, shape: Array<number | string>): ValueInfoProto => ({
  name,
  type: { elemType, shape: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
});
const pastInfo = (name: string) => info(name, DataType.FLOAT, [1, kvHeads, 'past', hd]);
const loopCounters = [info('iter', DataType.INT64, []), info('cond_in', DataType.BOOL, [])];

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
      info('input_ids', DataType.INT64, [1, 1]),
      info('attention_mask', DataType.INT64, [1, 'L']),
      info('position_ids', DataType.INT64, [1, 1]),
      ...pastNames.map(pastInfo),
    ],
    {
      after: [
        node('Gather', ['logits', 'minus_one'], ['last_logits'], [int('axis', 1)]),
        node('ArgMax', ['last_logits'], ['next_ids'], [int('axis', 1), int('keepdims', 1)]),
        node('Concat', ['attention_mask', 'one_11'], ['mask_next'], [int('axis', 1)]),
        node('Add', ['position_ids', 'one_11'], ['pos_next']),
        node('Identity', ['cond_in'], ['cond_out']),
        node('Identity', ['next_ids'], ['token']),
      ],
    },
    [int64s('minus_one', [], [-1]), int64s('one_11', [1, 1], [1])],
    [
      info('cond_out', DataType.BOOL, []),
      info('next_ids', DataType.INT64, [1, 1]),
      info('mask_next', DataType.INT64, [1, 'L1']),
      info('pos_next', DataType.INT64, [1, 1]),
      ...presentNames.map(pastInfo),
      info('token', DataType.INT64, [1, 1]),
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
        [{ name: 'body', type: AttributeType.GRAPH, g: b }],
      ),
    ],
    initializer: [],
    input: [
      info('trips', DataType.INT64, []),
      info('go', DataType.BOOL, []),
      info('ids0', DataType.INT64, [1, 1]),
      info('mask0', DataType.INT64, [1, 'L']),
      info('pos0', DataType.INT64, [1, 1]),
      ...pastNames.map((n) => pastInfo(`${n}_0`)),
    ],
    output: [info('tokens', DataType.INT64, ['steps', 1, 1])],
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
    [info('ids_all', DataType.INT64, [1, 'L'])],
    {
      before: [
        node('Identity', ['ids_all'], ['input_ids']),
        node('Shape', ['ids_all'], ['ids_shape']),
        node(
          'ConstantOfShape',
          ['ids_shape'],
          ['attention_mask'],
          [{ name: 'value', type: AttributeType.TENSOR, t: int64s('', [1], [1]) }],
        ),
        node('CumSum', ['attention_mask', 'one'], ['positions_from_1']),
        node('Sub', ['positions_from_1', 'one'], ['position_ids']),
      ],
      after: [
        node('Gather', ['logits', 'minus_one'], ['last_logits'], [int('axis', 1)]),
        node('ArgMax', ['last_logits'], ['next_ids'], [int('axis', 1), int('keepdims', 1)]),
        node('Concat', ['ids_all', 'next_ids'], ['ids_next'], [int('axis', 1)]),
        node('Identity', ['cond_in'], ['cond_out']),
        node('Identity', ['next_ids'], ['token']),
      ],
    },
    [int64s('minus_one', [], [-1]), int64s('one', [], [1]), ...emptyPasts],
    [
      info('cond_out', DataType.BOOL, []),
      info('ids_next', DataType.INT64, [1, 'L1']),
      info('token', DataType.INT64, [1, 1]),
    ],
  );
  // The body's empty pasts are initializers, not inputs: drop them from the inputs the model graph declared.
  return model({
    name: 'recompute_loop',
    node: [
      node(
        'Loop',
        ['trips', 'go', 'prompt'],
        ['ids_f', 'tokens'],
        [{ name: 'body', type: AttributeType.GRAPH, g: b }],
      ),
    ],
    initializer: [],
    input: [
      info('trips', DataType.INT64, []),
      info('go', DataType.BOOL, []),
      info('prompt', DataType.INT64, [1, 'L']),
    ],
    output: [info('tokens', DataType.INT64, ['steps', 1, 1])],
    valueInfo: [],
  });
}

const options = { ...inferenceSessionOptions, ...(threads > 0 ? { threads } : {}) };
const step = await OrtSession.create(buildInferenceModel(config, weights), options);
const cached = await OrtSession.create(cachedLoop(), options);
const recompute = await OrtSession.create(recomputeLoop(), options);

const rng = new Rng(4);
const prompt = [0, ...Array.from({ length: PROMPT - 1 }, () => 3 + rng.int(config.vocab_size - 3))];
const i64 = (xs: number[]) => BigInt64Array.from(xs.map(BigInt));
const argmaxLast = (logits: Float32Array, seq: number): number => {
  const v = config.vocab_size;
  let best = 0;
  for (let k = 1; k < v; k++)
    if ((logits[(seq - 1) * v + k] as number) > (logits[(seq - 1) * v + best] as number)) best = k;
  return best;
};
const emptyPast = (): Record<string, TensorValue> =>
  Object.fromEntries(pastNames.map((n) => [n, { data: new Float32Array(0), dims: [1, kvHeads, 0, hd] }]));

/** TypeScript-driven greedy decode, one run per token: on the cache, or the whole sequence each time. */
async function stepwise(useCache: boolean): Promise<number[]> {
  const ids = [...prompt];
  const out: number[] = [];
  let past = emptyPast();
  for (let t = 0; t < NEW; t++) {
    const fresh = useCache && t > 0 ? ids.slice(-1) : ids;
    const start = useCache && t > 0 ? ids.length - 1 : 0;
    const r = await step.run({
      input_ids: { data: i64(fresh), dims: [1, fresh.length] },
      attention_mask: { data: i64(ids.map(() => 1)), dims: [1, ids.length] },
      position_ids: { data: i64(fresh.map((_, k) => start + k)), dims: [1, fresh.length] },
      ...(useCache ? past : emptyPast()),
    });
    const next = argmaxLast(r.logits?.data as Float32Array, fresh.length);
    if (useCache)
      past = Object.fromEntries(pastNames.map((n, k) => [n, r[presentNames[k] as string] as TensorValue]));
    ids.push(next);
    out.push(next);
  }
  return out;
}

/** Prefill in one run, then the other 63 tokens in one run of the cached loop. */
async function inGraphCached(): Promise<number[]> {
  const r = await step.run({
    input_ids: { data: i64(prompt), dims: [1, prompt.length] },
    attention_mask: { data: i64(prompt.map(() => 1)), dims: [1, prompt.length] },
    position_ids: { data: i64(prompt.map((_, k) => k)), dims: [1, prompt.length] },
    ...emptyPast(),
  });
  const first = argmaxLast(r.logits?.data as Float32Array, prompt.length);
  const loop = await cached.run({
    trips: { data: i64([NEW - 1]), dims: [] },
    go: { data: Uint8Array.from([1]), dims: [], type: 'bool' },
    ids0: { data: i64([first]), dims: [1, 1] },
    mask0: { data: i64([...prompt, first].map(() => 1)), dims: [1, prompt.length + 1] },
    pos0: { data: i64([prompt.length]), dims: [1, 1] },
    ...Object.fromEntries(pastNames.map((n, k) => [`${n}_0`, r[presentNames[k] as string] as TensorValue])),
  });
  return [first, ...Array.from(loop.tokens?.data as BigInt64Array, Number)];
}

/** All 64 tokens in one run of the recompute loop. */
async function inGraphRecompute(): Promise<number[]> {
  const r = await recompute.run({
    trips: { data: i64([NEW]), dims: [] },
    go: { data: Uint8Array.from([1]), dims: [], type: 'bool' },
    prompt: { data: i64(prompt), dims: [1, prompt.length] },
  });
  return Array.from(r.tokens?.data as BigInt64Array, Number);
}

const ways = {
  'TypeScript loop, KV cache': () => stepwise(true),
  'TypeScript loop, recompute': () => stepwise(false),
  'ONNX Loop, KV cache': inGraphCached,
  'ONNX Loop, recompute': inGraphRecompute,
};
const tokens = await Promise.all(Object.values(ways).map((f) => f()));
for (const [k, name] of Object.keys(ways).entries())
  if (JSON.stringify(tokens[k]) !== JSON.stringify(tokens[0]))
    throw new Error(`${name} gave other tokens:\n${tokens[k]}\nthan\n${tokens[0]}`);

const cpu = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const cpuUs: number[][] = Object.keys(ways).map(() => []);
const wallUs: number[][] = Object.keys(ways).map(() => []);
for (let r = 0; r < REPEATS; r++) {
  for (const [k, f] of Object.values(ways).entries()) {
    const [c, w] = [cpu(), performance.now()];
    await f();
    cpuUs[k]?.push((cpu() - c) / NEW);
    wallUs[k]?.push(((performance.now() - w) * 1000) / NEW);
  }
}
const m = (xs: number[] | undefined) => median(xs ?? []);
const f0 = (x: number) => x.toFixed(0).padStart(7);
const lines = [
  `${which === smallModel ? 'small' : 'medium'} model, batch 1, ${PROMPT}-token prompt, ${NEW} greedy tokens, ${threads > 0 ? threads : 'default'} intra-op thread(s); us per token, medians of ${REPEATS}`,
  '                                CPU      wall',
];
for (const [k, name] of Object.keys(ways).entries())
  lines.push(`  ${name.padEnd(28)} ${f0(m(cpuUs[k]))}   ${f0(m(wallUs[k]))}`);
const ratio = (a: number, b: number) =>
  `${(m(cpuUs[b]) / m(cpuUs[a])).toFixed(2)}x CPU, ${(m(wallUs[b]) / m(wallUs[a])).toFixed(2)}x wall`;
lines.push(`KV-cache speed-up, TypeScript loops: ${ratio(0, 1)}`);
lines.push(`KV-cache speed-up, ONNX Loops:      ${ratio(2, 3)}`);
lines.push('(the four ways gave the same 64 tokens)');
process.stdout.write(`${lines.join('\n')}\n`);
await Promise.all([step.dispose(), cached.dispose(), recompute.dispose()]);

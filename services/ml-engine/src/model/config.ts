/**
 * The model's `config.json`, in Hugging Face Llama field names so checkpoints move to and from HF tools.
 * The head follows HF's architectures too: `LlamaForCausalLM` (policy, preference model) has an LM head;
 * `LlamaForSequenceClassification` with one label (Bradley-Terry reward model) has a scalar `score` head
 * read at the last non-pad token. Mistral (`model_type: "mistral"`) is Llama's computation under other
 * names, accepted when its sliding window covers the whole context. Every field either changes the
 * computation as HF's does or is refused naming it; `ignoredHfFields` lists the ones that cannot.
 */
import { type EngineError, invalidInput } from '../engine-error.js';

export type HeadType = 'lm' | 'scalar';

/** HF's rope scaling (`rope_scaling`, or transformers 5's `rope_parameters`), normalised; see rope.ts. */
export type RopeScaling =
  | { rope_type: 'linear' | 'dynamic'; factor: number }
  | {
      rope_type: 'llama3';
      factor: number;
      low_freq_factor: number;
      high_freq_factor: number;
      original_max_position_embeddings: number;
    };

export type ModelType = 'llama' | 'mistral' | 'qwen2';

export interface LlamaConfig {
  architectures: string[];
  model_type: ModelType;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  vocab_size: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings: boolean;
  hidden_act: 'silu';
  initializer_range: number;
  /** null for a tokenizer without BOS (Qwen2's). */
  bos_token_id: number | null;
  eos_token_id: number;
  pad_token_id: number;
  /** Only for the scalar head (HF sequence classification); 1 for a reward model. */
  num_labels?: number;
  /** The attention head width when it is not hidden_size / num_attention_heads (Mistral, Qwen, Gemma). */
  head_dim?: number;
  rope_scaling?: RopeScaling;
  /** Mistral's attention window; only null or at least max_position_embeddings (full attention). */
  sliding_window?: number | null;
  /** Biases on q, k, v and o (HF's attention_bias); Qwen2 has them on q, k and v whatever this says. */
  attention_bias?: boolean;
  /** Biases on the MLP's gate, up and down projections. */
  mlp_bias?: boolean;
}

export const architectureOf: Record<HeadType, string> = {
  lm: 'LlamaForCausalLM',
  scalar: 'LlamaForSequenceClassification',
};

/** The HF class prefix of each model type: `${prefix}ForCausalLM`, `${prefix}ForSequenceClassification`. */
const classPrefix: Record<ModelType, string> = { llama: 'Llama', mistral: 'Mistral', qwen2: 'Qwen2' };

export function headTypeOf(config: LlamaConfig): HeadType {
  return config.architectures[0]?.endsWith('ForSequenceClassification') ? 'scalar' : 'lm';
}

export function headDim(config: LlamaConfig): number {
  return config.head_dim ?? config.hidden_size / config.num_attention_heads;
}

export const defaultLlamaConfig: LlamaConfig = {
  architectures: [architectureOf.lm],
  model_type: 'llama',
  hidden_size: 128,
  intermediate_size: 344,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 512,
  max_position_embeddings: 128,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  hidden_act: 'silu',
  initializer_range: 0.02,
  bos_token_id: 0,
  eos_token_id: 1,
  pad_token_id: 2,
};

/**
 * Fields HF writes that do not change the computation; accepted and dropped on import. dtypes say how the
 * weights were stored (the engine computes in float32); use_cache and the labels' names only change what
 * HF returns; pretraining_tp > 1 splits HF's matmuls into slices with the same result. Fields that do
 * change the computation are parsed below or refused: attention_dropout above 0, rope types other than
 * linear / llama3 / dynamic, sliding windows shorter than the context, num_labels other than 1 in a model
 * directory (the import folds 2 labels into 1).
 */
const ignoredHfFields = new Set([
  'torch_dtype',
  'dtype',
  'transformers_version',
  'use_cache',
  'pretraining_tp',
  'id2label',
  'label2id',
  'problem_type',
  '_name_or_path',
]);

/** Fields with one accepted value: the value that leaves the computation as the engine does it. */
const fixedHfFields: Record<string, { value: unknown; why: string }> = {
  attention_dropout: { value: 0, why: 'attention has no dropout here' },
  // Qwen2's sliding window applies only with use_sliding_window; full attention everywhere otherwise.
  use_sliding_window: { value: false, why: 'sliding-window attention is not supported' },
};

/** Qwen2 fields that say nothing once use_sliding_window is false (checked above). */
const qwen2WindowFields = new Set(['sliding_window', 'max_window_layers']);

const integerFields = [
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'vocab_size',
  'max_position_embeddings',
  'bos_token_id',
  'eos_token_id',
  'pad_token_id',
  'num_labels',
] as const;
const positiveNumberFields = ['rms_norm_eps', 'rope_theta', 'initializer_range'] as const;

function closest(name: string, candidates: string[]): string | undefined {
  const dist = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) (d[0] as number[])[j] = j;
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++) {
        const row = d[i] as number[];
        const prev = d[i - 1] as number[];
        row[j] = Math.min(
          (prev[j] as number) + 1,
          (row[j - 1] as number) + 1,
          (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
        );
      }
    }
    return (d[a.length] as number[])[b.length] as number;
  };
  const best = candidates.map((c) => [c, dist(name, c)] as const).sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= 3 ? best[0] : undefined;
}

type Fail = (field: string, what: string) => EngineError;

function ropeObject(value: unknown, field: string, fail: Fail): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw fail(field, `must be an object, got ${JSON.stringify(value)}`);
  return value as Record<string, unknown>;
}

/**
 * `rope_scaling` (or `rope_parameters` without its rope_theta) as a RopeScaling; undefined for none or
 * "default". transformers 4 wrote the type as `type`, later versions as `rope_type`.
 */
function ropeScalingOf(value: unknown, field: string, fail: Fail): RopeScaling | undefined {
  if (value === undefined || value === null) return undefined;
  const o = ropeObject(value, field, fail);
  const type = o.rope_type ?? o.type;
  if (type === undefined || type === 'default') return undefined;
  const num = (name: string, min: number): number => {
    const v = o[name];
    if (typeof v !== 'number' || !(v >= min))
      throw fail(field, `needs "${name}" a number >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const known = new Set([
    'rope_type',
    'type',
    'factor',
    'low_freq_factor',
    'high_freq_factor',
    'original_max_position_embeddings',
  ]);
  for (const key of Object.keys(o)) {
    // attention_factor and the YaRN/LongRoPE fields would scale what these types never scale.
    if (!known.has(key))
      throw fail(field, `has "${key}", which rope type ${JSON.stringify(type)} does not use`);
  }
  if (type === 'linear' || type === 'dynamic') return { rope_type: type, factor: num('factor', 1) };
  if (type === 'llama3') {
    const low = num('low_freq_factor', 0);
    const high = num('high_freq_factor', 0);
    if (!(high > low)) throw fail(field, `needs high_freq_factor > low_freq_factor, got ${high} <= ${low}`);
    return {
      rope_type: 'llama3',
      factor: num('factor', 1),
      low_freq_factor: low,
      high_freq_factor: high,
      original_max_position_embeddings: num('original_max_position_embeddings', 1),
    };
  }
  throw fail(
    field,
    `has rope type ${JSON.stringify(type)}; supported are "linear", "llama3" and "dynamic" (or "default")`,
  );
}

/**
 * Validates a parsed config.json (partial configs take the defaults above). `file` names the source in
 * errors, e.g. `model/config.json: field "hiden_size" is not a Llama config field (did you mean hidden_size?)`.
 */
export function parseLlamaConfig(raw: unknown, file = 'config.json'): LlamaConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalidInput(`${file}: expected a JSON object`, file, 'write a config.json with Llama field names');
  }
  const known = new Set(
    Object.keys(defaultLlamaConfig).concat(
      'num_labels',
      'head_dim',
      'rope_scaling',
      'sliding_window',
      'attention_bias',
      'mlp_bias',
    ),
  );
  const qwen2 = (raw as { model_type?: unknown }).model_type === 'qwen2';
  const out: Record<string, unknown> = { ...defaultLlamaConfig };
  const fail = (field: string, what: string): EngineError =>
    invalidInput(`${file}: field "${field}" ${what}`, `${file}:${field}`);
  for (const [key, value] of Object.entries(raw)) {
    if (ignoredHfFields.has(key)) continue;
    const fixed = fixedHfFields[key];
    if (fixed !== undefined) {
      if (value !== fixed.value && value !== null)
        throw fail(
          key,
          `must be ${JSON.stringify(fixed.value)} (${fixed.why}), got ${JSON.stringify(value)}`,
        );
      continue;
    }
    if (qwen2 && qwen2WindowFields.has(key)) continue;
    if (key === 'layer_types') {
      // transformers 5 spells out each layer's attention; only full attention is computed here.
      if (!Array.isArray(value) || value.some((t) => t !== 'full_attention'))
        throw fail(key, `must list only "full_attention" (sliding-window attention is not supported)`);
      continue;
    }
    if (key === 'rope_parameters') {
      // transformers 5 writes rope_theta and the scaling together here.
      const { rope_theta, ...rest } = ropeObject(value, key, fail);
      if (rope_theta !== undefined) out.rope_theta = rope_theta;
      out.rope_scaling = rest;
      continue;
    }
    if (!known.has(key)) {
      const hint = closest(key, [...known]);
      throw invalidInput(
        `${file}: field "${key}" is not a Llama config field${hint ? ` (did you mean ${hint}?)` : ''}`,
        `${file}:${key}`,
        `remove it, or use one of ${[...known].join(', ')}`,
      );
    }
    out[key] = value;
  }
  const scaling = ropeScalingOf(out.rope_scaling, 'rope_scaling', fail);
  if (scaling === undefined) delete out.rope_scaling;
  else out.rope_scaling = scaling;
  for (const f of ['attention_bias', 'mlp_bias']) {
    if (out[f] === undefined || out[f] === null || out[f] === false) delete out[f];
    else if (out[f] !== true) throw fail(f, `must be true or false, got ${JSON.stringify(out[f])}`);
  }
  if (out.head_dim === null || out.head_dim === undefined) delete out.head_dim;
  else if (!Number.isInteger(out.head_dim) || (out.head_dim as number) < 2)
    throw fail('head_dim', `must be an integer >= 2, got ${JSON.stringify(out.head_dim)}`);
  for (const f of integerFields) {
    const v = out[f];
    if (v === undefined && f === 'num_labels') continue;
    if (v === null && f === 'bos_token_id') continue;
    if (!Number.isInteger(v) || (v as number) < 0)
      throw fail(f, `must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  for (const f of positiveNumberFields) {
    const v = out[f];
    if (typeof v !== 'number' || !(v > 0)) throw fail(f, `must be a number > 0, got ${JSON.stringify(v)}`);
  }
  if (typeof out.tie_word_embeddings !== 'boolean')
    throw fail('tie_word_embeddings', 'must be true or false');
  if (out.hidden_act !== 'silu')
    throw fail('hidden_act', `must be "silu" (SwiGLU), got ${JSON.stringify(out.hidden_act)}`);
  if (!Object.hasOwn(classPrefix, out.model_type as string))
    throw fail('model_type', `must be "llama", "mistral" or "qwen2", got ${JSON.stringify(out.model_type)}`);
  const prefix = classPrefix[out.model_type as ModelType];
  const arch = out.architectures;
  const classes = [`${prefix}ForCausalLM`, `${prefix}ForSequenceClassification`];
  if (!Array.isArray(arch) || arch.length !== 1 || !classes.includes(arch[0] as string)) {
    throw fail(
      'architectures',
      `must be ["${classes[0]}"] or ["${classes[1]}"] for model_type "${out.model_type}", got ${JSON.stringify(arch)}`,
    );
  }
  const c = out as unknown as LlamaConfig;
  const window = c.sliding_window;
  if (window === null) delete c.sliding_window;
  else if (window !== undefined) {
    if (!Number.isInteger(window) || window < c.max_position_embeddings)
      throw invalidInput(
        `${file}: field "sliding_window" is ${JSON.stringify(window)}, shorter than max_position_embeddings (${c.max_position_embeddings}): sliding-window attention is not supported`,
        `${file}:sliding_window`,
        `set max_position_embeddings to at most ${window} (the window then covers the context), or sliding_window to null`,
      );
  }
  if (c.rope_scaling?.rope_type === 'dynamic') {
    // HF recomputes the frequencies for sequences longer than the original context only.
    const original = (raw as { rope_scaling?: { original_max_position_embeddings?: unknown } }).rope_scaling
      ?.original_max_position_embeddings;
    if (typeof original === 'number' && original < c.max_position_embeddings)
      throw fail(
        'rope_scaling',
        `"dynamic" with original_max_position_embeddings ${original} < max_position_embeddings ${c.max_position_embeddings} changes the frequencies with the sequence length, which static graphs cannot`,
      );
  }
  for (const f of [
    'hidden_size',
    'intermediate_size',
    'num_hidden_layers',
    'num_attention_heads',
    'num_key_value_heads',
    'vocab_size',
    'max_position_embeddings',
  ] as const) {
    if (c[f] < 1) throw fail(f, 'must be at least 1');
  }
  if (c.head_dim === undefined && c.hidden_size % c.num_attention_heads !== 0) {
    throw fail(
      'hidden_size',
      `(${c.hidden_size}) must be divisible by num_attention_heads (${c.num_attention_heads})`,
    );
  }
  if (headDim(c) % 2 !== 0)
    throw fail(
      c.head_dim === undefined ? 'hidden_size' : 'head_dim',
      `: the head width must be even for RoPE, got ${headDim(c)}`,
    );
  if (c.num_attention_heads % c.num_key_value_heads !== 0) {
    throw fail(
      'num_key_value_heads',
      `(${c.num_key_value_heads}) must divide num_attention_heads (${c.num_attention_heads})`,
    );
  }
  for (const f of ['bos_token_id', 'eos_token_id', 'pad_token_id'] as const) {
    const id = c[f];
    if (id !== null && id >= c.vocab_size)
      throw fail(f, `(${id}) must be below vocab_size (${c.vocab_size})`);
  }
  if (headTypeOf(c) === 'scalar') {
    // Two-label heads are folded into one row when a checkpoint is imported (two-label-head.ts).
    if ((c.num_labels ?? 1) !== 1)
      throw fail(
        'num_labels',
        `must be 1 in an engine model directory, got ${c.num_labels} (a Hugging Face checkpoint with 2 labels is imported as reward = logit[1] - logit[0]; import it with \`rlhf model import\`)`,
      );
    c.num_labels = 1;
    c.tie_word_embeddings = false;
  }
  return c;
}

/** Number of trainable parameters, for progress lines and MFU. */
export function parameterCount(c: LlamaConfig): number {
  const d = c.hidden_size;
  const kv = c.num_key_value_heads * headDim(c);
  const q = c.num_attention_heads * headDim(c);
  const attentionBias = c.model_type === 'qwen2' ? q + 2 * kv : c.attention_bias ? q + 2 * kv + d : 0;
  const mlpBias = c.mlp_bias ? 2 * c.intermediate_size + d : 0;
  const perLayer = d * q * 2 + d * kv * 2 + 3 * d * c.intermediate_size + 2 * d + attentionBias + mlpBias;
  const head = headTypeOf(c) === 'scalar' ? d : c.tie_word_embeddings ? 0 : c.vocab_size * d;
  return c.vocab_size * d + c.num_hidden_layers * perLayer + d + head;
}

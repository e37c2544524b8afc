/**
 * The model's `config.json`, in Hugging Face Llama field names so checkpoints move to and from HF tools.
 * The head follows HF's architectures too: `LlamaForCausalLM` (policy, preference model) has an LM head;
 * `LlamaForSequenceClassification` with one label (Bradley-Terry reward model) has a scalar `score` head
 * read at the last non-pad token.
 */
import { type EngineError, invalidInput } from '../engine-error.js';

export type HeadType = 'lm' | 'scalar';

export interface LlamaConfig {
  architectures: string[];
  model_type: 'llama';
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
  bos_token_id: number;
  eos_token_id: number;
  pad_token_id: number;
  /** Only for the scalar head (HF sequence classification); 1 for a reward model. */
  num_labels?: number;
}

export const architectureOf: Record<HeadType, string> = {
  lm: 'LlamaForCausalLM',
  scalar: 'LlamaForSequenceClassification',
};

export function headTypeOf(config: LlamaConfig): HeadType {
  return config.architectures[0] === architectureOf.scalar ? 'scalar' : 'lm';
}

export function headDim(config: LlamaConfig): number {
  return config.hidden_size / config.num_attention_heads;
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

/** Fields HF writes that do not change the computation here; accepted and dropped on import. */
const ignoredHfFields = new Set([
  'torch_dtype',
  'transformers_version',
  'use_cache',
  'attention_bias',
  'attention_dropout',
  'mlp_bias',
  'pretraining_tp',
  'rope_scaling',
  'head_dim',
  'id2label',
  'label2id',
  'problem_type',
  '_name_or_path',
  'auto_map',
]);

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

/**
 * Validates a parsed config.json (partial configs take the defaults above). `file` names the source in
 * errors, e.g. `model/config.json: field "hiden_size" is not a Llama config field (did you mean hidden_size?)`.
 */
export function parseLlamaConfig(raw: unknown, file = 'config.json'): LlamaConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalidInput(`${file}: expected a JSON object`, file, 'write a config.json with Llama field names');
  }
  const known = new Set(Object.keys(defaultLlamaConfig).concat('num_labels'));
  const out: Record<string, unknown> = { ...defaultLlamaConfig };
  for (const [key, value] of Object.entries(raw)) {
    if (ignoredHfFields.has(key)) continue;
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
  const fail = (field: string, what: string): EngineError =>
    invalidInput(`${file}: field "${field}" ${what}`, `${file}:${field}`);
  for (const f of integerFields) {
    const v = out[f];
    if (v === undefined && f === 'num_labels') continue;
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
  if (out.model_type !== 'llama')
    throw fail('model_type', `must be "llama", got ${JSON.stringify(out.model_type)}`);
  const arch = out.architectures;
  if (
    !Array.isArray(arch) ||
    arch.length !== 1 ||
    !Object.values(architectureOf).includes(arch[0] as string)
  ) {
    throw fail(
      'architectures',
      `must be ["${architectureOf.lm}"] or ["${architectureOf.scalar}"], got ${JSON.stringify(arch)}`,
    );
  }
  const c = out as unknown as LlamaConfig;
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
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw fail(
      'hidden_size',
      `(${c.hidden_size}) must be divisible by num_attention_heads (${c.num_attention_heads})`,
    );
  }
  if (headDim(c) % 2 !== 0)
    throw fail('hidden_size', `/ num_attention_heads must be even for RoPE, got ${headDim(c)}`);
  if (c.num_attention_heads % c.num_key_value_heads !== 0) {
    throw fail(
      'num_key_value_heads',
      `(${c.num_key_value_heads}) must divide num_attention_heads (${c.num_attention_heads})`,
    );
  }
  for (const f of ['bos_token_id', 'eos_token_id', 'pad_token_id'] as const) {
    if (c[f] >= c.vocab_size) throw fail(f, `(${c[f]}) must be below vocab_size (${c.vocab_size})`);
  }
  if (headTypeOf(c) === 'scalar') {
    if ((c.num_labels ?? 1) !== 1) throw fail('num_labels', 'must be 1 for a reward model');
    c.num_labels = 1;
    c.tie_word_embeddings = false;
  }
  return c;
}

/** Number of trainable parameters, for progress lines and MFU. */
export function parameterCount(c: LlamaConfig): number {
  const d = c.hidden_size;
  const kv = c.num_key_value_heads * headDim(c);
  const perLayer = d * d * 2 + d * kv * 2 + 3 * d * c.intermediate_size + 2 * d;
  const head = headTypeOf(c) === 'scalar' ? d : c.tie_word_embeddings ? 0 : c.vocab_size * d;
  return c.vocab_size * d + c.num_hidden_layers * perLayer + d + head;
}

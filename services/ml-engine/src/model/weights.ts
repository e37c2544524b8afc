/**
 * The parameters of a Llama model: HF names, HF layouts (`nn.Linear` weights are [out, in]) and HF's
 * initialisation (normal with `initializer_range` for linear and embedding weights, ones for RMSNorm).
 */
import { EngineError } from '../engine-error.js';
import type { Rng } from '../random/rng.js';
import { headDim, headTypeOf, type LlamaConfig } from './config.js';

export type Weights = Map<string, Float32Array>;

export interface WeightSpec {
  name: string;
  shape: number[];
  /** HF's initialisation: normal(0, initializer_range) for matrices, ones for norms, zeros for biases. */
  init: 'normal' | 'ones' | 'zeros';
}

export type Projection =
  | 'self_attn.q_proj'
  | 'self_attn.k_proj'
  | 'self_attn.v_proj'
  | 'self_attn.o_proj'
  | 'mlp.gate_proj'
  | 'mlp.up_proj'
  | 'mlp.down_proj';

/** Which projections carry a bias: attention_bias (q, k, v, o), Qwen2 (q, k, v), mlp_bias (the MLP's). */
export function hasBias(c: LlamaConfig, proj: Projection): boolean {
  if (proj.startsWith('mlp.')) return c.mlp_bias === true;
  if (c.model_type === 'qwen2') return proj !== 'self_attn.o_proj';
  return c.attention_bias === true;
}

export function layerPrefix(i: number): string {
  return `model.layers.${i}`;
}

/** Every parameter of the model in a fixed order (the order of checkpoints and optimizer state). */
export function weightSpecs(c: LlamaConfig): WeightSpec[] {
  const d = c.hidden_size;
  const q = c.num_attention_heads * headDim(c);
  const kv = c.num_key_value_heads * headDim(c);
  const specs: WeightSpec[] = [
    { name: 'model.embed_tokens.weight', shape: [c.vocab_size, d], init: 'normal' },
  ];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = layerPrefix(i);
    // A projection's weight is [out, in] (nn.Linear); its bias, when it has one, follows it: [out].
    const proj = (name: Projection, out: number, input: number) => {
      specs.push({ name: `${p}.${name}.weight`, shape: [out, input], init: 'normal' });
      if (hasBias(c, name)) specs.push({ name: `${p}.${name}.bias`, shape: [out], init: 'zeros' });
    };
    specs.push({ name: `${p}.input_layernorm.weight`, shape: [d], init: 'ones' });
    proj('self_attn.q_proj', q, d);
    proj('self_attn.k_proj', kv, d);
    proj('self_attn.v_proj', kv, d);
    proj('self_attn.o_proj', d, q);
    specs.push({ name: `${p}.post_attention_layernorm.weight`, shape: [d], init: 'ones' });
    proj('mlp.gate_proj', c.intermediate_size, d);
    proj('mlp.up_proj', c.intermediate_size, d);
    proj('mlp.down_proj', d, c.intermediate_size);
  }
  specs.push({ name: 'model.norm.weight', shape: [d], init: 'ones' });
  if (headTypeOf(c) === 'scalar') specs.push({ name: 'score.weight', shape: [1, d], init: 'normal' });
  else if (!c.tie_word_embeddings)
    specs.push({ name: 'lm_head.weight', shape: [c.vocab_size, d], init: 'normal' });
  return specs;
}

export function initWeights(c: LlamaConfig, rng: Rng): Weights {
  const weights: Weights = new Map();
  for (const spec of weightSpecs(c)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (spec.init === 'ones') data.fill(1);
    else if (spec.init === 'zeros') data.fill(0);
    else for (let i = 0; i < n; i++) data[i] = rng.normal() * c.initializer_range;
    weights.set(spec.name, data);
  }
  return weights;
}

/**
 * Checks that `weights` holds exactly the model's parameters with the right sizes; `source` names the
 * file in the error (`model/model.safetensors: model.layers.0.mlp.up_proj.weight has shape [...]`).
 */
export function checkWeights(
  c: LlamaConfig,
  weights: ReadonlyMap<string, { length: number }>,
  source: string,
  shapes?: ReadonlyMap<string, readonly number[]>,
): void {
  const specs = weightSpecs(c);
  for (const spec of specs) {
    const w = weights.get(spec.name);
    if (!w) {
      throw new EngineError(
        'INVALID_ARGUMENT',
        `${source}: missing parameter ${spec.name} [${spec.shape.join(', ')}]`,
        {
          field: spec.name,
          fix: 'check that config.json matches the checkpoint',
        },
      );
    }
    const shape = shapes?.get(spec.name);
    const n = spec.shape.reduce((a, b) => a * b, 1);
    if ((shape && shape.join(',') !== spec.shape.join(',')) || w.length !== n) {
      throw new EngineError(
        'INVALID_ARGUMENT',
        `${source}: ${spec.name} has shape [${(shape ?? [w.length]).join(', ')}], config.json implies [${spec.shape.join(', ')}]`,
        {
          field: spec.name,
          fix: 'check hidden_size, intermediate_size, num_*_heads and vocab_size in config.json',
        },
      );
    }
  }
  const expected = new Set(specs.map((s) => s.name));
  for (const name of weights.keys()) {
    if (!expected.has(name)) {
      throw new EngineError('INVALID_ARGUMENT', `${source}: unexpected parameter ${name}`, {
        field: name,
        fix:
          c.tie_word_embeddings && name === 'lm_head.weight'
            ? 'set tie_word_embeddings to false in config.json'
            : 'check that config.json matches the checkpoint',
      });
    }
  }
}

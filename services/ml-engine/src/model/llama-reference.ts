/**
 * A direct, slow float64 Llama forward pass written from HF's modeling_llama semantics (rotate_half RoPE,
 * repeat_kv, RMSNorm, SwiGLU). Tests compare the ONNX graphs against it; nothing else should call it.
 */
import { headDim, headTypeOf, type LlamaConfig } from './config.js';
import { ropeDivisors } from './rope.js';
import { layerPrefix, type Weights } from './weights.js';

type Mat = Float64Array[];

function getW(w: Weights, name: string): Float32Array {
  const v = w.get(name);
  if (!v) throw new Error(`missing ${name}`);
  return v;
}

/** y = x W^T for W [out, in]. */
function linear(x: Mat, w: Float32Array, out: number): Mat {
  const inDim = (x[0] as Float64Array).length;
  return x.map((row) => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let i = 0; i < inDim; i++) s += (row[i] as number) * (w[o * inDim + i] as number);
      y[o] = s;
    }
    return y;
  });
}

function rmsNorm(x: Mat, w: Float32Array, eps: number): Mat {
  return x.map((row) => {
    let ms = 0;
    for (const v of row) ms += v * v;
    const inv = 1 / Math.sqrt(ms / row.length + eps);
    return row.map((v, i) => v * inv * (w[i] as number));
  });
}

function rope(vec: Float64Array, offset: number, pos: number, divisors: readonly number[]): void {
  const half = divisors.length;
  for (let i = 0; i < half; i++) {
    const angle = pos / (divisors[i] as number);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    const x1 = vec[offset + i] as number;
    const x2 = vec[offset + half + i] as number;
    vec[offset + i] = x1 * c - x2 * s;
    vec[offset + half + i] = x2 * c + x1 * s;
  }
}

/**
 * One sequence (no padding): returns per-position logits [seq][vocab] for an LM head, or the score at the
 * last position for a scalar head.
 */
export function referenceForward(c: LlamaConfig, w: Weights, ids: number[]): { logits: Mat; score: number } {
  const d = c.hidden_size;
  const hd = headDim(c);
  const H = c.num_attention_heads;
  const KV = c.num_key_value_heads;
  const group = H / KV;
  const divisors = ropeDivisors(c);
  const emb = getW(w, 'model.embed_tokens.weight');
  let h: Mat = ids.map((id) => Float64Array.from(emb.subarray(id * d, (id + 1) * d)));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = layerPrefix(l);
    const x = rmsNorm(h, getW(w, `${p}.input_layernorm.weight`), c.rms_norm_eps);
    const q = linear(x, getW(w, `${p}.self_attn.q_proj.weight`), H * hd);
    const k = linear(x, getW(w, `${p}.self_attn.k_proj.weight`), KV * hd);
    const v = linear(x, getW(w, `${p}.self_attn.v_proj.weight`), KV * hd);
    ids.forEach((_, t) => {
      for (let head = 0; head < H; head++) rope(q[t] as Float64Array, head * hd, t, divisors);
      for (let head = 0; head < KV; head++) rope(k[t] as Float64Array, head * hd, t, divisors);
    });
    const attnOut: Mat = ids.map(() => new Float64Array(H * hd));
    for (let head = 0; head < H; head++) {
      const kvh = Math.floor(head / group);
      for (let t = 0; t < ids.length; t++) {
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hd; i++)
            dot +=
              ((q[t] as Float64Array)[head * hd + i] as number) *
              ((k[s] as Float64Array)[kvh * hd + i] as number);
          scores.push(dot / Math.sqrt(hd));
        }
        const max = Math.max(...scores);
        const e = scores.map((z) => Math.exp(z - max));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++) {
          const pr = (e[s] as number) / sum;
          const row = attnOut[t] as Float64Array;
          for (let i = 0; i < hd; i++) {
            row[head * hd + i] =
              (row[head * hd + i] as number) + pr * ((v[s] as Float64Array)[kvh * hd + i] as number);
          }
        }
      }
    }
    const o = linear(attnOut, getW(w, `${p}.self_attn.o_proj.weight`), d);
    h = h.map((row, t) => row.map((val, i) => val + ((o[t] as Float64Array)[i] as number)));
    const x2 = rmsNorm(h, getW(w, `${p}.post_attention_layernorm.weight`), c.rms_norm_eps);
    const gate = linear(x2, getW(w, `${p}.mlp.gate_proj.weight`), c.intermediate_size);
    const up = linear(x2, getW(w, `${p}.mlp.up_proj.weight`), c.intermediate_size);
    const act = gate.map((row, t) =>
      row.map((gv, i) => (gv / (1 + Math.exp(-gv))) * ((up[t] as Float64Array)[i] as number)),
    );
    const down = linear(act, getW(w, `${p}.mlp.down_proj.weight`), d);
    h = h.map((row, t) => row.map((val, i) => val + ((down[t] as Float64Array)[i] as number)));
  }
  const normed = rmsNorm(h, getW(w, 'model.norm.weight'), c.rms_norm_eps);
  if (headTypeOf(c) === 'scalar') {
    const last = linear([normed[normed.length - 1] as Float64Array], getW(w, 'score.weight'), 1);
    return { logits: [], score: (last[0] as Float64Array)[0] as number };
  }
  const head = c.tie_word_embeddings ? emb : getW(w, 'lm_head.weight');
  return { logits: linear(normed, head, c.vocab_size), score: Number.NaN };
}

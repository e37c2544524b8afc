/**
 * Rotary position embedding tables in the HF Llama convention: the head dimension is split into halves,
 * frequency i rotates the pair (x[i], x[i + hd/2]). Tables are constants indexed by position id, so no
 * trigonometry runs per step and no gradient flows into them. The frequencies come from the config
 * (`ropeFrequencies`: rope_theta and any rope scaling).
 */
import { headDim, type LlamaConfig, type RopeScaling } from './config.js';

/**
 * The angle divisors of the RoPE frequencies: frequency i turns p / divisor[i] at position p, with
 * divisor[i] = theta^(2i / headDim) unscaled (HF's inverse frequency is 1 / divisor). Under the config's
 * rope scaling, `linear` divides every frequency by the factor; `llama3` divides the low frequencies (wavelength beyond
 * original_max_position_embeddings / low_freq_factor) by it, keeps the high ones (below
 * original / high_freq_factor) and blends in between; `dynamic` changes nothing while sequences stay within
 * max_position_embeddings, which the engine never exceeds (parseLlamaConfig refuses the other cases).
 */
export function ropeDivisors(c: LlamaConfig): number[] {
  const hd = headDim(c);
  const base = Array.from({ length: hd / 2 }, (_, i) => c.rope_theta ** ((2 * i) / hd));
  const scaling: RopeScaling | undefined = c.rope_scaling;
  if (scaling === undefined) return base;
  if (scaling.rope_type !== 'llama3')
    return scaling.rope_type === 'linear' ? base.map((d) => d * scaling.factor) : base;
  const s = scaling;
  const old = s.original_max_position_embeddings;
  const lowWavelen = old / s.low_freq_factor;
  const highWavelen = old / s.high_freq_factor;
  return base.map((d) => {
    const wavelen = 2 * Math.PI * d;
    if (wavelen < highWavelen) return d;
    if (wavelen > lowWavelen) return d * s.factor;
    const smooth = (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    return 1 / ((1 - smooth) / (d * s.factor) + smooth / d);
  });
}
export interface RopeTables {
  /** [maxPositions, headDim]: cos(pos * f) repeated over both halves. */
  cos: number[];
  /**
   * [maxPositions, headDim]: -sin over the first half, +sin over the second. With it,
   * rope(x) = x * cos + swapHalves(x) * sinSigned, which equals HF's x * cos + rotate_half(x) * sin.
   */
  sinSigned: number[];
}

/** The rotation angle of frequency i at position p. */
function angle(p: number, i: number, divisors: readonly number[]): number {
  return p / (divisors[i] as number);
}

export function ropeTables(divisors: readonly number[], maxPositions: number): RopeTables {
  const headDim = divisors.length * 2;
  const half = divisors.length;
  const cos: number[] = new Array(maxPositions * headDim);
  const sinSigned: number[] = new Array(maxPositions * headDim);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const c = Math.cos(angle(p, i, divisors));
      const s = Math.sin(angle(p, i, divisors));
      cos[p * headDim + i] = c;
      cos[p * headDim + half + i] = c;
      sinSigned[p * headDim + i] = -s;
      sinSigned[p * headDim + half + i] = s;
    }
  }
  return { cos, sinSigned };
}

/**
 * The same angles as the cos/sin caches of ONNX RotaryEmbedding: [maxPositions, headDim / 2], frequency i in
 * column i; with interleaved = 0 the op rotates the pairs (x[i], x[i + hd/2]), the HF convention above.
 */
export function ropeCaches(
  divisors: readonly number[],
  maxPositions: number,
): { cos: number[]; sin: number[] } {
  const half = divisors.length;
  const cos: number[] = new Array(maxPositions * half);
  const sin: number[] = new Array(maxPositions * half);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      cos[p * half + i] = Math.cos(angle(p, i, divisors));
      sin[p * half + i] = Math.sin(angle(p, i, divisors));
    }
  }
  return { cos, sin };
}

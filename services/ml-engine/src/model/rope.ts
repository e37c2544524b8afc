/**
 * Rotary position embedding tables in the HF Llama convention: the head dimension is split into halves,
 * frequency i rotates the pair (x[i], x[i + hd/2]). Tables are constants indexed by position id, so no
 * trigonometry runs per step and no gradient flows into them.
 */
export interface RopeTables {
  /** [maxPositions, headDim]: cos(pos * f) repeated over both halves. */
  cos: number[];
  /**
   * [maxPositions, headDim]: -sin over the first half, +sin over the second. With it,
   * rope(x) = x * cos + swapHalves(x) * sinSigned, which equals HF's x * cos + rotate_half(x) * sin.
   */
  sinSigned: number[];
}

/** The rotation angle of frequency i at position p: p / theta^(2i / headDim). */
function angle(p: number, i: number, headDim: number, theta: number): number {
  return p / theta ** ((2 * i) / headDim);
}

export function ropeTables(headDim: number, maxPositions: number, theta: number): RopeTables {
  const half = headDim / 2;
  const cos: number[] = new Array(maxPositions * headDim);
  const sinSigned: number[] = new Array(maxPositions * headDim);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const c = Math.cos(angle(p, i, headDim, theta));
      const s = Math.sin(angle(p, i, headDim, theta));
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
  headDim: number,
  maxPositions: number,
  theta: number,
): { cos: number[]; sin: number[] } {
  const half = headDim / 2;
  const cos: number[] = new Array(maxPositions * half);
  const sin: number[] = new Array(maxPositions * half);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      cos[p * half + i] = Math.cos(angle(p, i, headDim, theta));
      sin[p * half + i] = Math.sin(angle(p, i, headDim, theta));
    }
  }
  return { cos, sin };
}

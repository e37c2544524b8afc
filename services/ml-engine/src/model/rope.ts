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

export function ropeTables(headDim: number, maxPositions: number, theta: number): RopeTables {
  const half = headDim / 2;
  const cos: number[] = new Array(maxPositions * headDim);
  const sinSigned: number[] = new Array(maxPositions * headDim);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p / theta ** ((2 * i) / headDim);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * headDim + i] = c;
      cos[p * headDim + half + i] = c;
      sinSigned[p * headDim + i] = -s;
      sinSigned[p * headDim + half + i] = s;
    }
  }
  return { cos, sinSigned };
}

/**
 * The KV cache of a running batch: one [rows, kvHeads, columns, headDim] float32 tensor per past input of
 * the inference graph (past_key_values.N.key|value), rows left-padded to a common number of columns. The
 * continuous decode loop reshapes it between steps: rows that finished leave (and leading columns that are
 * padding in every remaining row go with them), and newly prefilled rows join, the shorter side padded on
 * the left. Padding columns hold zeros; the attention mask gives them weight exactly 0, so their value does
 * not reach any output (a finite value is all that matters, 0 x NaN would not be 0).
 */
import type { TensorValue } from '../runtime/ort-session.js';

/** The per-layer feed and output names of the KV cache. */
export function cacheNames(layers: number): { past: string[]; present: string[] } {
  const past: string[] = [];
  const present: string[] = [];
  for (let i = 0; i < layers; i++) {
    for (const part of ['key', 'value']) {
      past.push(`past_key_values.${i}.${part}`);
      present.push(`present.${i}.${part}`);
    }
  }
  return { past, present };
}

export class KvCache {
  private constructor(
    /** Per past input, in graph-input order. */
    readonly tensors: readonly Float32Array[],
    readonly rows: number,
    readonly columns: number,
    readonly kvHeads: number,
    readonly headDim: number,
  ) {}

  static empty(layers: number, kvHeads: number, headDim: number): KvCache {
    const tensors = Array.from({ length: 2 * layers }, () => new Float32Array(0));
    return new KvCache(tensors, 0, 0, kvHeads, headDim);
  }

  /** The present.* outputs of a run, which are [rows, kvHeads, columns, headDim] each. */
  static fromOutputs(outputs: Record<string, TensorValue>, presentNames: readonly string[]): KvCache {
    const first = outputs[presentNames[0] as string];
    if (!first) throw new Error(`the run returned no ${presentNames[0]}`);
    const [rows, kvHeads, columns, headDim] = first.dims as [number, number, number, number];
    const tensors = presentNames.map((name) => {
      const t = outputs[name];
      if (!(t?.data instanceof Float32Array)) throw new Error(`the run returned no float32 ${name}`);
      return t.data;
    });
    return new KvCache(tensors, rows, columns, kvHeads, headDim);
  }

  /** The cache as past feeds, under `pastNames` (in the order of `tensors`). */
  feeds(pastNames: readonly string[], into: Record<string, TensorValue>): void {
    const dims = [this.rows, this.kvHeads, this.columns, this.headDim];
    pastNames.forEach((name, k) => {
      into[name] = { data: this.tensors[k] as Float32Array, dims };
    });
  }

  /** Rows `keep` (in that order) without their first `drop` columns. */
  select(keep: readonly number[], drop: number): KvCache {
    if (drop === 0 && keep.length === this.rows && keep.every((b, i) => b === i)) return this;
    const columns = this.columns - drop;
    const span = this.columns * this.headDim;
    const width = columns * this.headDim;
    const tensors = this.tensors.map((src) => {
      const dst = new Float32Array(keep.length * this.kvHeads * width);
      keep.forEach((b, i) => {
        for (let h = 0; h < this.kvHeads; h++) {
          const from = (b * this.kvHeads + h) * span + drop * this.headDim;
          dst.set(src.subarray(from, from + width), (i * this.kvHeads + h) * width);
        }
      });
      return dst;
    });
    return new KvCache(tensors, keep.length, columns, this.kvHeads, this.headDim);
  }

  /** This cache's rows, then `other`'s, the side with fewer columns padded on the left. */
  concat(other: KvCache): KvCache {
    if (this.rows === 0) return other;
    if (other.rows === 0) return this;
    const columns = Math.max(this.columns, other.columns);
    const width = columns * this.headDim;
    const tensors = this.tensors.map((mine, k) => {
      const dst = new Float32Array((this.rows + other.rows) * this.kvHeads * width);
      placeRows(mine, this, dst, 0, columns);
      placeRows(other.tensors[k] as Float32Array, other, dst, this.rows, columns);
      return dst;
    });
    return new KvCache(tensors, this.rows + other.rows, columns, this.kvHeads, this.headDim);
  }
}

/** Copies the rows of `src` (shaped as `shape`) into `dst` from row `at` on, right-aligned in `columns`. */
function placeRows(src: Float32Array, shape: KvCache, dst: Float32Array, at: number, columns: number): void {
  const hd = shape.headDim;
  const width = columns * hd;
  const offset = at * shape.kvHeads * width;
  if (shape.columns === columns) {
    dst.set(src.subarray(0, shape.rows * shape.kvHeads * width), offset);
    return;
  }
  const span = shape.columns * hd;
  const pad = (columns - shape.columns) * hd;
  for (let r = 0; r < shape.rows * shape.kvHeads; r++)
    dst.set(src.subarray(r * span, (r + 1) * span), offset + r * width + pad);
}

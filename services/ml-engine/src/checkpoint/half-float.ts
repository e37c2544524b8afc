/**
 * Float coding for checkpoints: little-endian F32 as stored, and 16-bit floats for checkpoints saved in half
 * precision. HF models are often published as F16 or BF16; the engine computes in F32, so reading widens
 * every value exactly (both formats are subsets of F32), and exporting to them rounds to nearest, ties to
 * even, as PyTorch's casts do.
 */

/** IEEE 754 binary16: 1 sign, 5 exponent, 10 mantissa bits. */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Decodes little-endian F16 values from `bytes` into `out`. */
export function decodeF16(bytes: Uint8Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = f16ToF32(bytes[2 * i]! | (bytes[2 * i + 1]! << 8));
}

/** bfloat16 is the top half of an F32: put the 16 bits back in the high half of a 32-bit word. */
export function decodeBf16(bytes: Uint8Array, out: Float32Array): void {
  const words = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < out.length; i++) words[i] = ((bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16) >>> 0;
}

export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Decodes little-endian F32 values (a copy, since the source may be unaligned for a Float32Array view). */
export function decodeF32(bytes: Uint8Array, out: Float32Array): void {
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes.subarray(0, out.byteLength));
    return;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
}

/** The little-endian bytes of F32 values, as safetensors stores them. */
export function encodeF32(values: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i]!, true);
  return bytes;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** F32 -> bfloat16 bits, round to nearest, ties to even (as torch's `.to(torch.bfloat16)`); NaN stays NaN. */
export function f32ToBf16(value: number): number {
  f32[0] = value;
  const bits = u32[0] as number;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** F32 -> IEEE binary16 bits, round to nearest, ties to even; overflow to infinity, underflow to subnormals. */
export function f32ToF16(value: number): number {
  f32[0] = value;
  const bits = u32[0] as number;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // Inf, NaN
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal (or zero): shift the full 24-bit significand into the 10-bit field.
    if (e < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = full & ((1 << shift) - 1);
    let out = full >>> shift;
    if (rest > half || (rest === half && out & 1)) out++;
    return sign | out;
  }
  let out = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rest > 0x1000 || (rest === 0x1000 && out & 1)) out++;
  return sign | out;
}

/** The little-endian bytes of `values` stored as `dtype` (F32 as is; F16 and BF16 rounded to nearest even). */
export function encodeAs(dtype: 'F32' | 'F16' | 'BF16', values: Float32Array): Uint8Array {
  if (dtype === 'F32') return encodeF32(values);
  const out = new Uint8Array(values.length * 2);
  const round = dtype === 'F16' ? f32ToF16 : f32ToBf16;
  for (let i = 0; i < values.length; i++) {
    const h = round(values[i] as number);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
  return out;
}

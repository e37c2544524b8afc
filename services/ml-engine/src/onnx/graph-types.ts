/**
 * The builder's view of a graph: values with a dtype and a static (possibly symbolic) shape, and nodes that
 * connect them. These are what shape inference and the autodiff rules read.
 */
import type { Dim, Shape } from './dims.js';
import type { TensorProto } from './onnx-types.js';
import type { DType } from './tensor-data.js';

/** A handle to one tensor in the graph being built. */
export interface Value {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
}

/** Forces FLOAT/FLOATS for an attribute whose value happens to be an integer (e.g. `alpha: { float: 1 }`). */
export interface FloatAttr {
  readonly float: number | readonly number[];
}

/**
 * Attribute values. Integers become INT/INTS unless the name is a float attribute of the standard ops
 * (`floatAttributeNames`) or the value is wrapped as `{ float }`; strings become STRING, tensors TENSOR.
 */
export type AttrValue = number | string | readonly number[] | readonly string[] | TensorProto | FloatAttr;
export type Attrs = Readonly<Record<string, AttrValue | undefined>>;

/** Attributes that are floats in the ONNX operator schemas, so `alpha: 1` still encodes as FLOAT. */
export const floatAttributeNames: ReadonlySet<string> = new Set([
  'alpha',
  'beta',
  'epsilon',
  'gamma',
  'lambd',
  'bias',
  'scale',
  'momentum',
]);

export interface GraphNode {
  readonly opType: string;
  readonly domain: string;
  readonly name: string;
  /** null marks an omitted optional input. */
  readonly inputs: readonly (Value | null)[];
  readonly outputs: readonly Value[];
  readonly attrs: Attrs;
}

/** What shape inference produces for each output. */
export interface OutInfo {
  dtype: DType;
  shape: Dim[];
}

export function intAttr(attrs: Attrs, name: string, fallback: number): number {
  const v = attrs[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number') throw new Error(`attribute ${name} must be an integer`);
  return v;
}

export function intsAttr(attrs: Attrs, name: string): readonly number[] | undefined {
  const v = attrs[name];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) {
    throw new Error(`attribute ${name} must be a list of integers`);
  }
  return v as readonly number[];
}

export function floatAttr(attrs: Attrs, name: string, fallback: number): number {
  const v = attrs[name];
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  if (typeof v === 'object' && 'float' in v && typeof v.float === 'number') return v.float;
  throw new Error(`attribute ${name} must be a number`);
}

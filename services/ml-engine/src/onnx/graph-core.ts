/**
 * The core of the graph builder: graph inputs, initializers, deduplicated constants, nodes with inferred
 * shapes, outputs, and the conversion to a ModelProto. Typed per-op helpers live in `graph-builder.ts`.
 */
import { type Dim, formatShape, type Shape } from './dims.js';
import {
  type Attrs,
  type AttrValue,
  floatAttributeNames,
  type GraphNode,
  type OutInfo,
  type Value,
} from './graph-types.js';
import { encodeModel } from './onnx-encode.js';
import {
  type AttributeProto,
  AttributeType,
  irVersionForOpset,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './onnx-types.js';
import { type InferContext, shapeRules } from './shape-inference.js';
import {
  type DType,
  dataTypeCode,
  type FloatDType,
  type TypedData,
  tensorFromData,
  typedArray,
} from './tensor-data.js';

export const DEFAULT_OPSET = 21;

export interface GraphOptions {
  /** The dtype of every float the model code creates: float32 to train, float64 for gradient checks. */
  float?: FloatDType;
  name?: string;
}

export interface OpOptions {
  /** Node name; single outputs take the same name, several outputs `name:i`. */
  name?: string;
  domain?: string;
  /** Output shapes (and dtypes) when they depend on runtime values shape inference cannot see. */
  shapes?: readonly Shape[];
  dtypes?: readonly DType[];
}

export interface BuildOptions {
  opset?: number;
  /** Drop nodes and initializers that no output depends on (default true). */
  prune?: boolean;
  docString?: string;
  /**
   * Where each initializer's payload goes: a TensorProto to use instead of the inline one (an external-data
   * reference, onnx/external-data.ts), or undefined to keep it inline. Called once per kept initializer, in
   * graph order, so a writer can append payloads to a data file as it is called.
   */
  externalize?: (
    name: string,
    data: TypedData,
    dims: readonly number[],
    dtype: DType,
  ) => TensorProto | undefined;
}

interface Constant {
  data: TypedData;
  dtype: DType;
  dims: readonly number[];
}

/** Constants at most this large are deduplicated by value (axes, scalars, shapes). */
const DEDUP_LIMIT = 64;

export class GraphCore {
  readonly float: FloatDType;
  readonly name: string;
  readonly nodes: GraphNode[] = [];
  private readonly graphInputs: Value[] = [];
  private readonly graphOutputs: { value: Value; name: string }[] = [];
  /** Output names given to computed values, applied when the graph is written. */
  private readonly renames = new Map<string, string>();
  private readonly constants = new Map<string, Constant>();
  private readonly producers = new Map<string, GraphNode>();
  private readonly used = new Set<string>();
  private readonly dedup = new Map<string, Value>();
  private readonly scopes: string[] = [];
  private counter = 0;

  constructor(options: GraphOptions = {}) {
    this.float = options.float ?? 'float32';
    this.name = options.name ?? 'graph';
  }

  /** A graph input (fed at run time): data, masks, and in training graphs the weights. */
  input(name: string, dtype: DType, shape: Shape): Value {
    const v = this.value(this.claim(name), dtype, shape);
    this.graphInputs.push(v);
    return v;
  }

  /** A named initializer stored in the model, e.g. a weight of an inference graph. */
  initializer(
    name: string,
    data: TypedData | readonly number[],
    shape: readonly number[],
    dtype: DType = this.float,
  ): Value {
    const typed = ArrayBuffer.isView(data) ? (data as TypedData) : typedArray(dtype, data as number[]);
    const v = this.value(this.claim(name), dtype, shape);
    // The payload is checked against the shape now and copied into a TensorProto only when the graph is
    // built: a large model's weights then exist once until they are written (or written out of line).
    const numel = shape.reduce((a, b) => a * b, 1);
    if (typed.length !== numel)
      throw new Error(
        `tensor ${v.name}: ${typed.length} values for shape [${shape.join(', ')}] (needs ${numel})`,
      );
    this.constants.set(v.name, { data: typed, dtype, dims: [...shape] });
    return v;
  }

  /** An anonymous constant (an initializer); small ones are shared by value. */
  constant(data: TypedData | readonly number[], shape?: readonly number[], dtype: DType = this.float): Value {
    const dims = shape ?? [data.length];
    const small = data.length <= DEDUP_LIMIT;
    const key = small ? `${dtype}|${dims.join(',')}|${Array.from(data as ArrayLike<number>).join(',')}` : '';
    const hit = small ? this.dedup.get(key) : undefined;
    if (hit) return hit;
    const v = this.initializer(this.fresh('const'), data, dims, dtype);
    if (small) this.dedup.set(key, v);
    return v;
  }

  /** A scalar constant of the given dtype (default: the graph's float). */
  scalar(value: number, dtype: DType = this.float): Value {
    return this.constant([value], [], dtype);
  }

  /** A 1-D int64 constant: axes, shapes, pads, split sizes. */
  int64s(values: readonly number[]): Value {
    return this.constant(values, [values.length], 'int64');
  }

  /** The values of a constant, or undefined for computed values and graph inputs. */
  constantData(v: Value): TypedData | undefined {
    return this.constants.get(v.name)?.data;
  }

  producer(v: Value): GraphNode | undefined {
    return this.producers.get(v.name);
  }

  /** Adds a node with one output and returns that output. */
  op(
    opType: string,
    inputs: readonly (Value | null | undefined)[],
    attrs: Attrs = {},
    opts: OpOptions = {},
  ): Value {
    return this.opN(opType, inputs, 1, attrs, opts)[0] as Value;
  }

  /** Adds a node with `count` outputs. */
  opN(
    opType: string,
    inputs: readonly (Value | null | undefined)[],
    count: number,
    attrs: Attrs = {},
    opts: OpOptions = {},
  ): Value[] {
    const name = this.claim(opts.name ? this.scoped(opts.name) : this.fresh(opType));
    const ins = inputs.map((v) => v ?? null);
    const infos = this.infer(opType, name, ins, attrs, count, opts);
    const outputs = infos.map((info, i) => {
      const out = count === 1 ? name : this.claim(`${name}:${i}`);
      return this.value(out, info.dtype, info.shape);
    });
    const node: GraphNode = { opType, domain: opts.domain ?? '', name, inputs: ins, outputs, attrs };
    this.nodes.push(node);
    for (const o of outputs) this.producers.set(o.name, node);
    return outputs;
  }

  /**
   * Marks a value as a graph output named `name` (default: its own name) and returns that name. A computed
   * value is simply renamed when the graph is written, so naming costs no node; graph inputs,
   * initializers and values already output under another name go through an Identity.
   */
  output(v: Value, name: string = v.name): string {
    const isSource = this.constants.has(v.name) || this.graphInputs.some((i) => i.name === v.name);
    const taken = this.graphOutputs.some((o) => o.value.name === v.name);
    if (isSource || taken) {
      // Output names are never scoped: they are the graph's public interface.
      const scopes = this.scopes.splice(0);
      const copy = this.op('Identity', [v], {}, { name });
      this.scopes.push(...scopes);
      this.graphOutputs.push({ value: copy, name: copy.name });
      return copy.name;
    }
    if (name !== v.name) this.renames.set(v.name, this.claim(name));
    this.graphOutputs.push({ value: v, name });
    return name;
  }

  /** The graph outputs so far, with the names they are written under. */
  get outputs(): readonly { value: Value; name: string }[] {
    return this.graphOutputs;
  }

  get inputs(): readonly Value[] {
    return this.graphInputs;
  }

  /** Runs `body` with auto-generated and given node names prefixed by `prefix/`. */
  scope<T>(prefix: string, body: () => T): T {
    this.scopes.push(prefix);
    try {
      return body();
    } finally {
      this.scopes.pop();
    }
  }

  build(options: BuildOptions = {}): ModelProto {
    const opset = options.opset ?? DEFAULT_OPSET;
    if (this.graphOutputs.length === 0)
      throw new Error(`graph ${this.name}: no outputs; call output() first`);
    const prune = options.prune !== false;
    const nodes = prune ? this.live() : this.nodes;
    const referenced = new Set(nodes.flatMap((n) => n.inputs.map((i) => i?.name)));
    for (const o of this.graphOutputs) referenced.add(o.value.name);
    const keep = (name: string) => !prune || referenced.has(name);
    const rename = (name: string) => this.renames.get(name) ?? name;
    const domains = new Set(nodes.map((n) => n.domain).filter((d) => d !== ''));
    return {
      irVersion: irVersionForOpset(opset),
      opsetImport: [
        { domain: '', version: opset },
        ...[...domains].map((domain) => ({ domain, version: 1 })),
      ],
      producerName: 'rlhf-ml-engine',
      producerVersion: '0.1.0',
      domain: '',
      modelVersion: 1,
      docString: options.docString ?? '',
      metadataProps: [],
      graph: {
        name: this.name,
        node: nodes.map((n) => nodeProto(n, rename)),
        initializer: [...this.constants.entries()]
          .filter(([n]) => keep(n))
          .map(
            ([n, c]) =>
              options.externalize?.(n, c.data, c.dims, c.dtype) ?? tensorFromData(n, c.dtype, c.dims, c.data),
          ),
        input: this.graphInputs.map(valueInfo),
        output: this.graphOutputs.map((o) => valueInfo({ ...o.value, name: o.name })),
        valueInfo: [],
      },
    };
  }

  /** The serialized model, ready for `InferenceSession.create`. */
  toBytes(options: BuildOptions = {}): Uint8Array {
    return encodeModel(this.build(options));
  }

  /** Nodes some output depends on, in their original (topological) order. */
  private live(): GraphNode[] {
    const needed = new Set(this.graphOutputs.map((o) => o.value.name));
    const keep = new Set<GraphNode>();
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i] as GraphNode;
      if (!n.outputs.some((o) => needed.has(o.name))) continue;
      keep.add(n);
      for (const v of n.inputs) if (v) needed.add(v.name);
    }
    return this.nodes.filter((n) => keep.has(n));
  }

  private infer(
    opType: string,
    name: string,
    inputs: readonly (Value | null)[],
    attrs: Attrs,
    count: number,
    opts: OpOptions,
  ): OutInfo[] {
    const where = `op ${opType} (${name})`;
    if (opts.shapes) {
      const shapes = opts.shapes;
      if (shapes.length !== count) throw new Error(`${where}: ${shapes.length} shapes for ${count} outputs`);
      return shapes.map((s, i) => ({
        dtype: opts.dtypes?.[i] ?? inputs[0]?.dtype ?? this.float,
        shape: [...s],
      }));
    }
    const rule = shapeRules[opts.domain ? `${opts.domain}:${opType}` : opType];
    if (rule === undefined) {
      throw new Error(`${where}: no shape inference for this op; pass shapes (and dtypes) to op()`);
    }
    const ctx: InferContext = {
      opType,
      where,
      inputs,
      attrs,
      outputs: count,
      input: (i) => {
        const v = inputs[i];
        if (!v) throw new Error(`${where}: input ${i} is required`);
        return v;
      },
      ints: (i) => {
        const v = inputs[i];
        const data = v ? this.constantData(v) : undefined;
        return data === undefined ? undefined : Array.from(data as ArrayLike<number | bigint>, Number);
      },
    };
    const infos = rule(ctx);
    if (infos.length !== count) throw new Error(`${where}: the op has ${infos.length} outputs, not ${count}`);
    return infos;
  }

  private value(name: string, dtype: DType, shape: Shape): Value {
    for (const d of shape) {
      if (typeof d === 'number' ? !(Number.isInteger(d) && d >= 0) : d === '') {
        throw new Error(`value ${name}: bad dim ${String(d)} in ${formatShape(shape)}`);
      }
    }
    return Object.freeze({ name, dtype, shape: Object.freeze([...shape]) });
  }

  private scoped(name: string): string {
    return this.scopes.length ? `${this.scopes.join('/')}/${name}` : name;
  }

  private fresh(base: string): string {
    let name: string;
    do name = this.scoped(`${base}_${this.counter++}`);
    while (this.used.has(name));
    return name;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new Error(`the name ${name} is already used in graph ${this.name}`);
    this.used.add(name);
    return name;
  }
}

function nodeProto(n: GraphNode, rename: (name: string) => string): NodeProto {
  const attribute: AttributeProto[] = [];
  for (const [name, v] of Object.entries(n.attrs))
    if (v !== undefined) attribute.push(attributeProto(name, v));
  return {
    name: n.name,
    opType: n.opType,
    domain: n.domain,
    input: n.inputs.map((v) => (v ? rename(v.name) : '')),
    output: n.outputs.map((v) => rename(v.name)),
    attribute,
  };
}

function attributeProto(name: string, v: AttrValue): AttributeProto {
  const asFloat = floatAttributeNames.has(name);
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: v };
  if (typeof v === 'number') {
    return asFloat || !Number.isInteger(v)
      ? { name, type: AttributeType.FLOAT, f: v }
      : { name, type: AttributeType.INT, i: v };
  }
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string'))
      return { name, type: AttributeType.STRINGS, strings: [...v] as string[] };
    const nums = v as readonly number[];
    return asFloat || nums.some((x) => !Number.isInteger(x))
      ? { name, type: AttributeType.FLOATS, floats: [...nums] }
      : { name, type: AttributeType.INTS, ints: [...nums] };
  }
  if ('float' in (v as object)) {
    const f = (v as { float: number | readonly number[] }).float;
    return typeof f === 'number'
      ? { name, type: AttributeType.FLOAT, f }
      : { name, type: AttributeType.FLOATS, floats: [...f] };
  }
  return { name, type: AttributeType.TENSOR, t: v as TensorProto };
}

function valueInfo(v: Value): ValueInfoProto {
  return {
    name: v.name,
    type: {
      elemType: dataTypeCode(v.dtype),
      shape: v.shape.map((d: Dim) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
    },
  };
}

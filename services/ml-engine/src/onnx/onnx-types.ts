/**
 * The subset of onnx.proto the engine reads and writes, as plain objects. Field numbers live in the codec
 * (`onnx-encode.ts`, `onnx-decode.ts`); these types only name the fields. 64-bit integers that are sizes or
 * attribute values are JS numbers (exact up to 2^53); int64 tensor payloads stay bigint (BigInt64Array).
 */

/** TensorProto.DataType values (onnx.proto). Only the first five are built by the engine. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
} as const;

/** AttributeProto.AttributeType values (onnx.proto). */
export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
} as const;
export type AttributeTypeCode = (typeof AttributeType)[keyof typeof AttributeType];

export interface TensorProto {
  name: string;
  dims: number[];
  dataType: number;
  /** Little-endian fixed-width payload; the engine always writes this form. */
  rawData?: Uint8Array;
  floatData?: number[];
  doubleData?: number[];
  int32Data?: number[];
  int64Data?: bigint[];
  docString?: string;
  /**
   * Where the payload lives when it is outside the protobuf (onnx.proto `external_data`: `location`, a file
   * beside the model; `offset` and `length` in bytes). Set together with `dataLocation: EXTERNAL`.
   */
  externalData?: StringStringEntry[];
  /** TensorProto.DataLocation: DEFAULT (0, the payload is in this message) or EXTERNAL (1). */
  dataLocation?: number;
}

/** TensorProto.DataLocation values (onnx.proto). */
export const DataLocation = { DEFAULT: 0, EXTERNAL: 1 } as const;

export interface AttributeProto {
  name: string;
  type: AttributeTypeCode;
  f?: number;
  i?: number;
  s?: string;
  t?: TensorProto;
  g?: GraphProto;
  floats?: number[];
  ints?: number[];
  strings?: string[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
}

export interface NodeProto {
  name: string;
  opType: string;
  domain: string;
  input: string[];
  output: string[];
  attribute: AttributeProto[];
  docString?: string;
}

/** One dimension: a size, a symbolic name, or unknown (neither). */
export interface DimensionProto {
  dimValue?: number;
  dimParam?: string;
}

export interface TensorTypeProto {
  elemType: number;
  /** Absent means unknown rank; an empty list means a scalar. */
  shape?: DimensionProto[];
}

export interface ValueInfoProto {
  name: string;
  /** Only tensor types are supported; sequence and map types are rejected on decode. */
  type?: TensorTypeProto;
  docString?: string;
}

export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  docString?: string;
}

export interface OperatorSetIdProto {
  domain: string;
  version: number;
}

export interface StringStringEntry {
  key: string;
  value: string;
}

export interface ModelProto {
  irVersion: number;
  opsetImport: OperatorSetIdProto[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  graph: GraphProto;
  metadataProps: StringStringEntry[];
}

/**
 * The IR version released with each default-domain opset (the VERSION_TABLE of onnx/helper.py, up to
 * onnx 1.18 / opset 23): a model declares the IR version of its opset.
 */
export function irVersionForOpset(opset: number): number {
  if (!Number.isInteger(opset) || opset < 13 || opset > 23) {
    throw new Error(`opset must be an integer from 13 to 23, got ${opset}`);
  }
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

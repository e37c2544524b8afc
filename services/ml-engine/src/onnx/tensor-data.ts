/**
 * Element types the engine builds graphs with, and the conversion between JS typed arrays and TensorProto
 * payloads. Tensors are always written as raw_data (fixed-width little-endian), the compact form ORT reads
 * fastest; decoding also accepts the typed *_data fields other exporters write.
 */
import { DataType, type TensorProto } from './onnx-types.js';

export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool';
export type FloatDType = 'float32' | 'float64';

export type TypedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

interface DTypeInfo {
  code: number;
  bytes: number;
}

const dtypeInfo: Record<DType, DTypeInfo> = {
  float32: { code: DataType.FLOAT, bytes: 4 },
  float64: { code: DataType.DOUBLE, bytes: 8 },
  int64: { code: DataType.INT64, bytes: 8 },
  int32: { code: DataType.INT32, bytes: 4 },
  bool: { code: DataType.BOOL, bytes: 1 },
};

/** Bytes per element of an ONNX data type code, for the fixed-width types (half floats included). */
export function bytesPerElement(code: number): number | undefined {
  const known = Object.values(dtypeInfo).find((info) => info.code === code);
  if (known) return known.bytes;
  if (code === DataType.FLOAT16 || code === DataType.BFLOAT16) return 2;
  return undefined;
}

export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === 'float32' || dtype === 'float64';
}

export function dataTypeCode(dtype: DType): number {
  return dtypeInfo[dtype].code;
}

export function dtypeFromCode(code: number): DType | undefined {
  for (const [name, info] of Object.entries(dtypeInfo)) if (info.code === code) return name as DType;
  return undefined;
}

/** A typed array of `dtype` holding `values` (booleans as 0/1 bytes, int64 as bigint). */
export function typedArray(dtype: DType, values: ArrayLike<number> | readonly bigint[]): TypedData {
  const n = values.length;
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values as ArrayLike<number>);
    case 'float64':
      return Float64Array.from(values as ArrayLike<number>);
    case 'int32':
      return Int32Array.from(values as ArrayLike<number>);
    case 'bool':
      return Uint8Array.from(values as ArrayLike<number>, (v) => (v ? 1 : 0));
    case 'int64': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i] as number | bigint;
        out[i] = typeof v === 'bigint' ? v : BigInt(Math.trunc(v));
      }
      return out;
    }
  }
}

export function tensorFromData(
  name: string,
  dtype: DType,
  dims: readonly number[],
  data: TypedData,
): TensorProto {
  const numel = dims.reduce((a, b) => a * b, 1);
  if (data.length !== numel) {
    throw new Error(`tensor ${name}: ${data.length} values for shape [${dims.join(', ')}] (needs ${numel})`);
  }
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dims: [...dims], dataType: dataTypeCode(dtype), rawData: bytes.slice() };
}

/** Reads a tensor's payload as a typed array (a copy, properly aligned), whichever field carries it. */
export function tensorToData(t: TensorProto): TypedData {
  const dtype = dtypeFromCode(t.dataType);
  if (dtype === undefined) throw new Error(`tensor ${t.name}: unsupported data type ${t.dataType}`);
  const numel = t.dims.reduce((a, b) => a * b, 1);
  let out: TypedData;
  if (t.rawData !== undefined) {
    const want = numel * dtypeInfo[dtype].bytes;
    if (t.rawData.byteLength !== want) {
      throw new Error(`tensor ${t.name}: raw_data has ${t.rawData.byteLength} bytes, shape needs ${want}`);
    }
    // A copy, aligned and detached from the file buffer (Buffer#slice would return a view).
    const copy = new Uint8Array(t.rawData).buffer;
    out = viewAs(dtype, copy);
  } else {
    const typed = typedField(t, dtype);
    out = typedArray(dtype, typed);
  }
  if (out.length !== numel) {
    throw new Error(`tensor ${t.name}: ${out.length} values for shape [${t.dims.join(', ')}]`);
  }
  return out;
}

function viewAs(dtype: DType, buffer: ArrayBuffer): TypedData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer);
    case 'float64':
      return new Float64Array(buffer);
    case 'int64':
      return new BigInt64Array(buffer);
    case 'int32':
      return new Int32Array(buffer);
    case 'bool':
      return new Uint8Array(buffer);
  }
}

function typedField(t: TensorProto, dtype: DType): ArrayLike<number> | readonly bigint[] {
  switch (dtype) {
    case 'float32':
      return t.floatData ?? [];
    case 'float64':
      return t.doubleData ?? [];
    case 'int64':
      return t.int64Data ?? [];
    case 'int32':
    case 'bool':
      return t.int32Data ?? [];
  }
}

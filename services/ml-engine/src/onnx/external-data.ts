/**
 * ONNX external data (onnx/onnx docs/ExternalData.md): a tensor whose payload is outside the protobuf has
 * `data_location: EXTERNAL` and `external_data` entries `location` (a file path relative to the model's
 * directory), `offset` and `length` (bytes). This is how ONNX models outgrow protobuf's 2 GiB limit. A
 * location is read from files we did not write, so only a plain file name beside the model is accepted:
 * a path with separators or `..` could point anywhere on the machine.
 */
import { DataLocation, type TensorProto } from './onnx-types.js';
import { bytesPerElement } from './tensor-data.js';

export interface ExternalDataRef {
  location: string;
  offset: number;
  /** Bytes of payload; always present in what we accept (ONNX allows it absent, meaning "to the end"). */
  length: number;
}

/**
 * ONNX's own converter (`convert_model_to_external_data`) aligns large tensors to 4 KiB: ORT memory-maps
 * an external tensor whose offset is a multiple of the page size instead of copying it.
 */
export const EXTERNAL_DATA_ALIGNMENT = 4096;

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === DataLocation.EXTERNAL;
}

function nonNegativeInteger(raw: string, what: string): number {
  if (!/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(Number(raw)))
    throw new Error(`external_data ${what} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** The checked reference of an external tensor; throws (plain Error, the decoder wraps it) on a bad one. */
export function externalDataRef(t: TensorProto): ExternalDataRef {
  const entries = new Map((t.externalData ?? []).map((e) => [e.key, e.value]));
  const location = entries.get('location');
  if (location === undefined) throw new Error(`tensor ${t.name}: external_data has no location`);
  if (location === '' || /[/\\]/.test(location) || location === '.' || location === '..')
    throw new Error(
      `tensor ${t.name}: external_data location ${JSON.stringify(location)} is not a file name beside the model`,
    );
  if (t.rawData !== undefined) throw new Error(`tensor ${t.name}: both raw_data and external data`);
  const offset = nonNegativeInteger(entries.get('offset') ?? '0', `offset of ${t.name}`);
  const size = bytesPerElement(t.dataType);
  const expected = size === undefined ? undefined : t.dims.reduce((a, b) => a * b, 1) * size;
  const rawLength = entries.get('length');
  if (rawLength === undefined && expected === undefined)
    throw new Error(`tensor ${t.name}: external_data has no length`);
  const length =
    rawLength === undefined ? (expected as number) : nonNegativeInteger(rawLength, `length of ${t.name}`);
  if (expected !== undefined && length !== expected)
    throw new Error(
      `tensor ${t.name}: external_data length ${length}, shape [${t.dims.join(', ')}] needs ${expected}`,
    );
  return { location, offset, length };
}

/** A tensor whose payload is `length` bytes at `offset` of `location`. */
export function externalTensor(
  name: string,
  dataType: number,
  dims: readonly number[],
  ref: ExternalDataRef,
): TensorProto {
  return {
    name,
    dims: [...dims],
    dataType,
    dataLocation: DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: ref.location },
      { key: 'offset', value: String(ref.offset) },
      { key: 'length', value: String(ref.length) },
    ],
  };
}

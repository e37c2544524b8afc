/**
 * bytes -> ModelProto over protobuf-es' BinaryReader. Every nested length is checked against its parent,
 * every known field against its wire type, and tensor payloads against their shapes, so a truncated or
 * scrambled file fails here with `corrupt ONNX file <path>: <what>` instead of deep inside ORT.
 */
import { readFile } from 'node:fs/promises';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { EngineError } from '../engine-error.js';
import { externalDataRef, isExternal } from './external-data.js';
import type {
  AttributeProto,
  AttributeTypeCode,
  DimensionProto,
  GraphProto,
  ModelProto,
  NodeProto,
  OperatorSetIdProto,
  TensorProto,
  TensorTypeProto,
  ValueInfoProto,
} from './onnx-types.js';
import { DataLocation } from './onnx-types.js';
import { dtypeFromCode, tensorToData } from './tensor-data.js';

const { Varint, LengthDelimited, Bit32, Bit64 } = WireType;

class Corrupt extends Error {}

function fail(what: string): never {
  throw new Corrupt(what);
}

/** Decodes a serialized ModelProto; `source` names the file in error messages. */
export function decodeModel(bytes: Uint8Array, source = '<bytes>'): ModelProto {
  try {
    if (bytes.byteLength === 0) fail('the file is empty');
    const r = new BinaryReader(bytes);
    return readModel(r, r.len);
  } catch (err) {
    const what = err instanceof Error ? err.message : String(err);
    throw new EngineError('INVALID_ARGUMENT', `corrupt ONNX file ${source}: ${what}`, {
      field: source,
      fix: 'write the model again (the file is truncated or is not an ONNX ModelProto)',
      cause: err,
    });
  }
}

export async function readModelFile(path: string): Promise<ModelProto> {
  const buf = await readFile(path);
  // A plain Uint8Array view (no copy): tensor payloads then are ordinary subarrays, not Buffers.
  return decodeModel(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
}

/** Walks the fields of one message ending at `end`; `on` returns false for fields it does not know. */
function fields(r: BinaryReader, end: number, where: string, on: (f: number, wt: WireType) => boolean): void {
  while (r.pos < end) {
    const [field, wt] = r.tag();
    if (!on(field, wt)) r.skip(wt, field);
    if (r.pos > end) fail(`${where}: field ${field} runs past the end of its message`);
  }
}

/** Reads a length prefix and returns where that sub-message ends. */
function subEnd(r: BinaryReader, where: string): number {
  const len = r.uint32();
  const end = r.pos + len;
  if (end > r.len) fail(`${where}: a length of ${len} bytes runs past the end of the data`);
  return end;
}

function want(wt: WireType, expected: WireType, where: string, name: string): void {
  if (wt !== expected) fail(`${where}: field ${name} has wire type ${wt}, expected ${expected}`);
}

function str(r: BinaryReader, wt: WireType, where: string, name: string): string {
  want(wt, LengthDelimited, where, name);
  return r.string(true);
}

function int(r: BinaryReader, wt: WireType, where: string, name: string): number {
  want(wt, Varint, where, name);
  return Number(r.int64());
}

function safeInt(value: number, where: string, name: string): number {
  if (!Number.isSafeInteger(value)) fail(`${where}: ${name} ${value} is not an exact integer`);
  return value;
}

/** A repeated scalar field, accepted both packed and unpacked as protobuf requires. */
function repeated<T>(
  r: BinaryReader,
  wt: WireType,
  scalar: WireType,
  read: () => T,
  out: T[],
  where: string,
): void {
  if (wt === LengthDelimited && scalar !== LengthDelimited) {
    const end = subEnd(r, where);
    while (r.pos < end) out.push(read());
    if (r.pos !== end) fail(`${where}: packed values overrun their length`);
    return;
  }
  want(wt, scalar, where, 'repeated value');
  out.push(read());
}

function readModel(r: BinaryReader, end: number): ModelProto {
  const m: ModelProto = {
    irVersion: 0,
    opsetImport: [],
    producerName: '',
    producerVersion: '',
    domain: '',
    modelVersion: 0,
    docString: '',
    graph: emptyGraph(),
    metadataProps: [],
  };
  let sawGraph = false;
  const w = 'model';
  fields(r, end, w, (f, wt) => {
    if (f === 1) m.irVersion = safeInt(int(r, wt, w, 'ir_version'), w, 'ir_version');
    else if (f === 2) m.producerName = str(r, wt, w, 'producer_name');
    else if (f === 3) m.producerVersion = str(r, wt, w, 'producer_version');
    else if (f === 4) m.domain = str(r, wt, w, 'domain');
    else if (f === 5) m.modelVersion = int(r, wt, w, 'model_version');
    else if (f === 6) m.docString = str(r, wt, w, 'doc_string');
    else if (f === 7) {
      want(wt, LengthDelimited, w, 'graph');
      m.graph = readGraph(r, subEnd(r, w), 'graph');
      sawGraph = true;
    } else if (f === 8) {
      want(wt, LengthDelimited, w, 'opset_import');
      m.opsetImport.push(readOpset(r, subEnd(r, w), `opset_import[${m.opsetImport.length}]`));
    } else if (f === 14) {
      want(wt, LengthDelimited, w, 'metadata_props');
      const e = subEnd(r, w);
      const entry = { key: '', value: '' };
      fields(r, e, 'metadata_props', (g, gwt) => {
        if (g === 1) entry.key = str(r, gwt, 'metadata_props', 'key');
        else if (g === 2) entry.value = str(r, gwt, 'metadata_props', 'value');
        else return false;
        return true;
      });
      m.metadataProps.push(entry);
    } else return false;
    return true;
  });
  if (r.pos !== end) fail('trailing bytes after the model');
  if (m.irVersion <= 0) fail('ir_version is missing');
  if (!sawGraph) fail('the model has no graph');
  if (m.opsetImport.length === 0) fail('opset_import is empty');
  return m;
}

function readOpset(r: BinaryReader, end: number, w: string): OperatorSetIdProto {
  const o: OperatorSetIdProto = { domain: '', version: 0 };
  fields(r, end, w, (f, wt) => {
    if (f === 1) o.domain = str(r, wt, w, 'domain');
    else if (f === 2) o.version = safeInt(int(r, wt, w, 'version'), w, 'version');
    else return false;
    return true;
  });
  return o;
}

function emptyGraph(): GraphProto {
  return { name: '', node: [], initializer: [], input: [], output: [], valueInfo: [] };
}

function readGraph(r: BinaryReader, end: number, w: string): GraphProto {
  const g = emptyGraph();
  fields(r, end, w, (f, wt) => {
    if (f === 2) g.name = str(r, wt, w, 'name');
    else if (f === 10) g.docString = str(r, wt, w, 'doc_string');
    else if (f === 1 || f === 5 || f === 11 || f === 12 || f === 13) {
      want(wt, LengthDelimited, w, `#${f}`);
      const e = subEnd(r, w);
      if (f === 1) g.node.push(readNode(r, e, `${w}.node[${g.node.length}]`));
      else if (f === 5) g.initializer.push(readTensor(r, e, `${w}.initializer[${g.initializer.length}]`));
      else if (f === 11) g.input.push(readValueInfo(r, e, `${w}.input[${g.input.length}]`));
      else if (f === 12) g.output.push(readValueInfo(r, e, `${w}.output[${g.output.length}]`));
      else g.valueInfo.push(readValueInfo(r, e, `${w}.value_info[${g.valueInfo.length}]`));
    } else return false;
    return true;
  });
  return g;
}

function readNode(r: BinaryReader, end: number, w: string): NodeProto {
  const n: NodeProto = { name: '', opType: '', domain: '', input: [], output: [], attribute: [] };
  fields(r, end, w, (f, wt) => {
    if (f === 1) n.input.push(str(r, wt, w, 'input'));
    else if (f === 2) n.output.push(str(r, wt, w, 'output'));
    else if (f === 3) n.name = str(r, wt, w, 'name');
    else if (f === 4) n.opType = str(r, wt, w, 'op_type');
    else if (f === 6) n.docString = str(r, wt, w, 'doc_string');
    else if (f === 7) n.domain = str(r, wt, w, 'domain');
    else if (f === 5) {
      want(wt, LengthDelimited, w, 'attribute');
      n.attribute.push(readAttribute(r, subEnd(r, w), `${w}.attribute[${n.attribute.length}]`));
    } else return false;
    return true;
  });
  if (n.opType === '') fail(`${w}: op_type is missing`);
  return n;
}

function readAttribute(r: BinaryReader, end: number, w: string): AttributeProto {
  const a: AttributeProto = { name: '', type: 0 };
  const floats: number[] = [];
  const ints: number[] = [];
  const strings: string[] = [];
  const tensors: TensorProto[] = [];
  const graphs: GraphProto[] = [];
  fields(r, end, w, (f, wt) => {
    if (f === 1) a.name = str(r, wt, w, 'name');
    else if (f === 20) a.type = int(r, wt, w, 'type') as AttributeTypeCode;
    else if (f === 2) {
      want(wt, Bit32, w, 'f');
      a.f = r.float();
    } else if (f === 3) a.i = int(r, wt, w, 'i');
    else if (f === 4) a.s = str(r, wt, w, 's');
    else if (f === 5) {
      want(wt, LengthDelimited, w, 't');
      a.t = readTensor(r, subEnd(r, w), `${w}.t`);
    } else if (f === 6) {
      want(wt, LengthDelimited, w, 'g');
      a.g = readGraph(r, subEnd(r, w), `${w}.g`);
    } else if (f === 7) repeated(r, wt, Bit32, () => r.float(), floats, w);
    else if (f === 8) repeated(r, wt, Varint, () => Number(r.int64()), ints, w);
    else if (f === 9) strings.push(str(r, wt, w, 'strings'));
    else if (f === 10) {
      want(wt, LengthDelimited, w, 'tensors');
      tensors.push(readTensor(r, subEnd(r, w), `${w}.tensors[${tensors.length}]`));
    } else if (f === 11) {
      want(wt, LengthDelimited, w, 'graphs');
      graphs.push(readGraph(r, subEnd(r, w), `${w}.graphs[${graphs.length}]`));
    } else return false;
    return true;
  });
  if (a.name === '') fail(`${w}: name is missing`);
  if (floats.length) a.floats = floats;
  if (ints.length) a.ints = ints;
  if (strings.length) a.strings = strings;
  if (tensors.length) a.tensors = tensors;
  if (graphs.length) a.graphs = graphs;
  return a;
}

function readTensor(r: BinaryReader, end: number, w: string): TensorProto {
  const t: TensorProto = { name: '', dims: [], dataType: 0 };
  const floatData: number[] = [];
  const doubleData: number[] = [];
  const int32Data: number[] = [];
  const int64Data: bigint[] = [];
  fields(r, end, w, (f, wt) => {
    if (f === 1) repeated(r, wt, Varint, () => safeInt(Number(r.int64()), w, 'dim'), t.dims, w);
    else if (f === 2) t.dataType = int(r, wt, w, 'data_type');
    else if (f === 4) repeated(r, wt, Bit32, () => r.float(), floatData, w);
    else if (f === 5) repeated(r, wt, Varint, () => r.int32(), int32Data, w);
    else if (f === 7) repeated(r, wt, Varint, () => BigInt(r.int64()), int64Data, w);
    else if (f === 8) t.name = str(r, wt, w, 'name');
    else if (f === 9) {
      want(wt, LengthDelimited, w, 'raw_data');
      t.rawData = r.bytes();
    } else if (f === 10) repeated(r, wt, Bit64, () => r.double(), doubleData, w);
    else if (f === 12) t.docString = str(r, wt, w, 'doc_string');
    else if (f === 13) {
      want(wt, LengthDelimited, w, 'external_data');
      const e = subEnd(r, w);
      const entry = { key: '', value: '' };
      fields(r, e, `${w}.external_data`, (g, gwt) => {
        if (g === 1) entry.key = str(r, gwt, `${w}.external_data`, 'key');
        else if (g === 2) entry.value = str(r, gwt, `${w}.external_data`, 'value');
        else return false;
        return true;
      });
      t.externalData = [...(t.externalData ?? []), entry];
    } else if (f === 14) t.dataLocation = int(r, wt, w, 'data_location');
    else return false;
    return true;
  });
  if (floatData.length) t.floatData = floatData;
  if (doubleData.length) t.doubleData = doubleData;
  if (int32Data.length) t.int32Data = int32Data;
  if (int64Data.length) t.int64Data = int64Data;
  if (t.dims.some((d) => d < 0)) fail(`${w}: negative dimension in [${t.dims.join(', ')}]`);
  if (t.dataLocation !== undefined && t.dataLocation !== DataLocation.DEFAULT) {
    if (!isExternal(t)) fail(`${w}: unknown data_location ${t.dataLocation}`);
    // The payload is checked against the shape when it is read (checkpoint/onnx-weights.ts).
    try {
      externalDataRef(t);
    } catch (err) {
      fail(`${w}: ${(err as Error).message}`);
    }
    return t;
  }
  // Types the engine knows are checked for a payload that fits the shape; others are carried through.
  if (dtypeFromCode(t.dataType) !== undefined) {
    try {
      tensorToData(t);
    } catch (err) {
      fail(`${w}: ${(err as Error).message}`);
    }
  } else if (t.dataType === 0) fail(`${w}: data_type is missing`);
  return t;
}

function readValueInfo(r: BinaryReader, end: number, w: string): ValueInfoProto {
  const v: ValueInfoProto = { name: '' };
  fields(r, end, w, (f, wt) => {
    if (f === 1) v.name = str(r, wt, w, 'name');
    else if (f === 3) v.docString = str(r, wt, w, 'doc_string');
    else if (f === 2) {
      want(wt, LengthDelimited, w, 'type');
      const e = subEnd(r, w);
      fields(r, e, `${w}.type`, (g, gwt) => {
        if (g === 1) {
          want(gwt, LengthDelimited, `${w}.type`, 'tensor_type');
          v.type = readTensorType(r, subEnd(r, w), `${w}.type.tensor_type`);
        } else if (g === 4 || g === 5) fail(`${w}: sequence and map types are not supported`);
        else return false;
        return true;
      });
    } else return false;
    return true;
  });
  if (v.name === '') fail(`${w}: name is missing`);
  return v;
}

function readTensorType(r: BinaryReader, end: number, w: string): TensorTypeProto {
  const t: TensorTypeProto = { elemType: 0 };
  fields(r, end, w, (f, wt) => {
    if (f === 1) t.elemType = int(r, wt, w, 'elem_type');
    else if (f === 2) {
      want(wt, LengthDelimited, w, 'shape');
      const shape: DimensionProto[] = [];
      fields(r, subEnd(r, w), `${w}.shape`, (g, gwt) => {
        if (g !== 1) return false;
        want(gwt, LengthDelimited, `${w}.shape`, 'dim');
        const d: DimensionProto = {};
        fields(r, subEnd(r, w), `${w}.shape.dim`, (h, hwt) => {
          if (h === 1) d.dimValue = safeInt(int(r, hwt, w, 'dim_value'), w, 'dim_value');
          else if (h === 2) d.dimParam = str(r, hwt, w, 'dim_param');
          else return false;
          return true;
        });
        shape.push(d);
        return true;
      });
      t.shape = shape;
    } else return false;
    return true;
  });
  if (t.elemType === 0) fail(`${w}: elem_type is missing`);
  return t;
}

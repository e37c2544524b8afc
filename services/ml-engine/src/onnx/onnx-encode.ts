/**
 * ModelProto -> bytes, by hand over protobuf-es' BinaryWriter. Field numbers are onnx.proto's. onnx.proto is
 * proto2, so repeated scalars without `[packed = true]` (dims, attribute ints/floats) are written unpacked,
 * exactly as the reference implementation writes them.
 */
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type {
  AttributeProto,
  GraphProto,
  ModelProto,
  NodeProto,
  TensorProto,
  ValueInfoProto,
} from './onnx-types.js';

const { Varint, LengthDelimited, Bit32 } = WireType;

export function encodeModel(model: ModelProto): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, Varint).int64(model.irVersion);
  if (model.producerName) w.tag(2, LengthDelimited).string(model.producerName);
  if (model.producerVersion) w.tag(3, LengthDelimited).string(model.producerVersion);
  if (model.domain) w.tag(4, LengthDelimited).string(model.domain);
  if (model.modelVersion) w.tag(5, Varint).int64(model.modelVersion);
  if (model.docString) w.tag(6, LengthDelimited).string(model.docString);
  w.tag(7, LengthDelimited).fork();
  writeGraph(w, model.graph);
  w.join();
  for (const op of model.opsetImport) {
    w.tag(8, LengthDelimited).fork();
    w.tag(1, LengthDelimited).string(op.domain);
    w.tag(2, Varint).int64(op.version);
    w.join();
  }
  for (const { key, value } of model.metadataProps) {
    w.tag(14, LengthDelimited).fork().tag(1, LengthDelimited).string(key);
    w.tag(2, LengthDelimited).string(value).join();
  }
  return w.finish();
}

function writeGraph(w: BinaryWriter, g: GraphProto): void {
  for (const n of g.node) message(w, 1, () => writeNode(w, n));
  w.tag(2, LengthDelimited).string(g.name);
  for (const t of g.initializer) message(w, 5, () => writeTensor(w, t));
  if (g.docString) w.tag(10, LengthDelimited).string(g.docString);
  for (const v of g.input) message(w, 11, () => writeValueInfo(w, v));
  for (const v of g.output) message(w, 12, () => writeValueInfo(w, v));
  for (const v of g.valueInfo) message(w, 13, () => writeValueInfo(w, v));
}

function writeNode(w: BinaryWriter, n: NodeProto): void {
  for (const s of n.input) w.tag(1, LengthDelimited).string(s);
  for (const s of n.output) w.tag(2, LengthDelimited).string(s);
  if (n.name) w.tag(3, LengthDelimited).string(n.name);
  w.tag(4, LengthDelimited).string(n.opType);
  for (const a of n.attribute) message(w, 5, () => writeAttribute(w, a));
  if (n.docString) w.tag(6, LengthDelimited).string(n.docString);
  if (n.domain) w.tag(7, LengthDelimited).string(n.domain);
}

function writeAttribute(w: BinaryWriter, a: AttributeProto): void {
  w.tag(1, LengthDelimited).string(a.name);
  if (a.f !== undefined) w.tag(2, Bit32).float(a.f);
  if (a.i !== undefined) w.tag(3, Varint).int64(a.i);
  if (a.s !== undefined) w.tag(4, LengthDelimited).string(a.s);
  if (a.t !== undefined) message(w, 5, () => writeTensor(w, a.t as TensorProto));
  if (a.g !== undefined) message(w, 6, () => writeGraph(w, a.g as GraphProto));
  for (const f of a.floats ?? []) w.tag(7, Bit32).float(f);
  for (const i of a.ints ?? []) w.tag(8, Varint).int64(i);
  for (const s of a.strings ?? []) w.tag(9, LengthDelimited).string(s);
  for (const t of a.tensors ?? []) message(w, 10, () => writeTensor(w, t));
  for (const g of a.graphs ?? []) message(w, 11, () => writeGraph(w, g));
  w.tag(20, Varint).int32(a.type);
}

function writeTensor(w: BinaryWriter, t: TensorProto): void {
  for (const d of t.dims) w.tag(1, Varint).int64(d);
  w.tag(2, Varint).int32(t.dataType);
  // The typed fields are packed in onnx.proto (`[packed = true]`).
  if (t.floatData?.length) packed(w, 4, () => each(t.floatData, (v) => w.float(v)));
  if (t.int32Data?.length) packed(w, 5, () => each(t.int32Data, (v) => w.int32(v)));
  if (t.int64Data?.length) packed(w, 7, () => each(t.int64Data, (v) => w.int64(v)));
  if (t.name) w.tag(8, LengthDelimited).string(t.name);
  if (t.rawData !== undefined) w.tag(9, LengthDelimited).bytes(t.rawData);
  if (t.doubleData?.length) packed(w, 10, () => each(t.doubleData, (v) => w.double(v)));
  if (t.docString) w.tag(12, LengthDelimited).string(t.docString);
  for (const { key, value } of t.externalData ?? []) {
    w.tag(13, LengthDelimited).fork().tag(1, LengthDelimited).string(key);
    w.tag(2, LengthDelimited).string(value).join();
  }
  if (t.dataLocation) w.tag(14, Varint).int32(t.dataLocation);
}

function writeValueInfo(w: BinaryWriter, v: ValueInfoProto): void {
  w.tag(1, LengthDelimited).string(v.name);
  if (v.type !== undefined) {
    const type = v.type;
    // TypeProto { tensor_type = 1: Tensor { elem_type = 1, shape = 2: TensorShapeProto { dim = 1 } } }
    message(w, 2, () =>
      message(w, 1, () => {
        w.tag(1, Varint).int32(type.elemType);
        if (type.shape === undefined) return;
        message(w, 2, () => {
          for (const d of type.shape ?? []) {
            message(w, 1, () => {
              if (d.dimValue !== undefined) w.tag(1, Varint).int64(d.dimValue);
              else if (d.dimParam !== undefined) w.tag(2, LengthDelimited).string(d.dimParam);
            });
          }
        });
      }),
    );
  }
  if (v.docString) w.tag(3, LengthDelimited).string(v.docString);
}

function message(w: BinaryWriter, field: number, body: () => void): void {
  w.tag(field, LengthDelimited).fork();
  body();
  w.join();
}

function each<T>(values: readonly T[] | undefined, write: (v: T) => unknown): void {
  for (const v of values ?? []) write(v);
}

/** A packed repeated scalar field has the same framing as a sub-message: tag, length, payload. */
const packed = message;

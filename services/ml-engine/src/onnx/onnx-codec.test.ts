import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { GraphBuilder } from './graph-builder.js';
import { decodeModel, readModelFile } from './onnx-decode.js';
import { encodeModel } from './onnx-encode.js';
import { DataType, type ModelProto } from './onnx-types.js';
import { tensorFromData, tensorToData, typedArray } from './tensor-data.js';

/** A model touching every field the codec knows: dtypes, symbolic dims, every attribute kind. */
function sampleModel(): ModelProto {
  const g = new GraphBuilder({ name: 'sample' });
  const x = g.input('x', 'float32', ['batch', 'seq', 4]);
  const ids = g.input('ids', 'int64', ['batch', 'seq']);
  const w = g.initializer('w', [1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
  g.initializer('d', typedArray('float64', [1.5, -2.25]), [2], 'float64');
  g.initializer('i32', typedArray('int32', [-7, 9]), [2], 'int32');
  g.initializer('flags', typedArray('bool', [1, 0, 1]), [3], 'bool');
  const y = g.matMul(x, w);
  const parts = g.split(y, [1, 1], -1);
  const m = g.op('Gemm', [g.reshape(x, [-1, 4]), w], { alpha: 1, beta: { float: 2 }, transB: 0 });
  g.op('Identity', [m], { note: 'text', floats: { float: [0.5, 1] }, ints: [1, -2, 3], names: ['a', 'b'] });
  const filled = g.filled([2], 3, 'int64');
  g.output(parts[0] as import('./graph-types.js').Value, 'first');
  g.output(g.gather(w, ids), 'rows');
  g.output(filled, 'filled');
  const model = g.build({ prune: false });
  model.metadataProps.push({ key: 'k', value: 'v' });
  return model;
}

test('encode -> decode round-trips every field, and re-encodes to the same bytes', () => {
  const model = sampleModel();
  const bytes = encodeModel(model);
  const back = decodeModel(bytes);
  assert.deepEqual(back, model);
  assert.deepEqual(encodeModel(back), bytes);
});

test('tensor payloads survive the round trip for every dtype', () => {
  const back = decodeModel(encodeModel(sampleModel()));
  const byName = new Map(back.graph.initializer.map((t) => [t.name, tensorToData(t)]));
  assert.deepEqual(Array.from(byName.get('d') as Float64Array), [1.5, -2.25]);
  assert.deepEqual(Array.from(byName.get('i32') as Int32Array), [-7, 9]);
  assert.deepEqual(Array.from(byName.get('flags') as Uint8Array), [1, 0, 1]);
  assert.deepEqual(Array.from(byName.get('w') as Float32Array), [1, 2, 3, 4, 5, 6, 7, 8]);
  const dims = back.graph.input[0]?.type?.shape;
  assert.deepEqual(dims, [{ dimParam: 'batch' }, { dimParam: 'seq' }, { dimValue: 4 }]);
});

test('the typed *_data fields other exporters write are read too', () => {
  const model = sampleModel();
  model.graph.initializer = [
    { name: 'f', dims: [2], dataType: DataType.FLOAT, floatData: [0.5, 2] },
    { name: 'g', dims: [2], dataType: DataType.DOUBLE, doubleData: [0.25, -1] },
    { name: 'h', dims: [3], dataType: DataType.INT64, int64Data: [1n, -2n, 2n ** 40n] },
    { name: 'k', dims: [2], dataType: DataType.INT32, int32Data: [-3, 4] },
  ];
  const back = decodeModel(encodeModel(model));
  const data = back.graph.initializer.map((t) => Array.from(tensorToData(t) as ArrayLike<number | bigint>));
  assert.deepEqual(data, [
    [0.5, 2],
    [0.25, -1],
    [1n, -2n, 2n ** 40n],
    [-3, 4],
  ]);
});

test('truncated, empty and garbage input is rejected as a corrupt ONNX file', () => {
  const bytes = encodeModel(sampleModel());
  const corrupt = (err: Error) => err.message.startsWith('corrupt ONNX file model.onnx: ');
  for (const cut of [1, 7, Math.floor(bytes.length / 2), bytes.length - 3]) {
    assert.throws(() => decodeModel(bytes.subarray(0, cut), 'model.onnx'), corrupt, `cut at ${cut}`);
  }
  assert.throws(
    () => decodeModel(new Uint8Array(0), 'model.onnx'),
    /corrupt ONNX file model\.onnx: the file is empty/,
  );
  assert.throws(() => decodeModel(new TextEncoder().encode('{"not": "onnx"}'), 'model.onnx'), corrupt);
  assert.throws(
    () => decodeModel(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]), 'model.onnx'),
    corrupt,
  );
});

test('structural damage is named: wire types, payload sizes, missing graph', () => {
  // graph (field 7) written as a varint instead of a message.
  const w = new BinaryWriter();
  w.tag(1, WireType.Varint).int64(9).tag(7, WireType.Varint).int32(3);
  assert.throws(
    () => decodeModel(w.finish(), 'm.onnx'),
    /corrupt ONNX file m\.onnx: model: field graph has wire type 0/,
  );

  const model = sampleModel();
  const bad = tensorFromData('bad', 'float32', [3], typedArray('float32', [1, 2, 3]));
  bad.rawData = (bad.rawData as Uint8Array).subarray(0, 10);
  model.graph.initializer.push(bad);
  assert.throws(
    () => decodeModel(encodeModel(model), 'm.onnx'),
    /initializer\[\d+\]: tensor bad: raw_data has 10 bytes, shape needs 12/,
  );

  const noGraph = new BinaryWriter().tag(1, WireType.Varint).int64(9).finish();
  assert.throws(() => decodeModel(noGraph, 'm.onnx'), /the model has no graph/);
});

test('readModelFile names the file in its error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'onnx-codec-'));
  const good = join(dir, 'good.onnx');
  const bad = join(dir, 'bad.onnx');
  const bytes = encodeModel(sampleModel());
  await writeFile(good, bytes);
  await writeFile(bad, bytes.subarray(0, 100));
  assert.equal((await readModelFile(good)).graph.name, 'sample');
  await assert.rejects(readModelFile(bad), (err: Error) =>
    err.message.startsWith(`corrupt ONNX file ${bad}: `),
  );
});

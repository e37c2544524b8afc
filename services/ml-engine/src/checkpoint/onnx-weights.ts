/**
 * The weights of a model directory live in `model.onnx` as initializers under their HF names, inline or in
 * `model.onnx.data` (model-onnx-file.ts), so there is one copy on disk and it is the one ORT runs. Reading
 * them back copies each payload once, straight into its own aligned Float32Array: from the protobuf bytes
 * (a view into them would pin the whole file and may be unaligned), or from the data file by offset, so a
 * model larger than memory allows twice is never read whole.
 */
import { type FileHandle, open, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { EngineError, invalidInput } from '../engine-error.js';
import type { LlamaConfig } from '../model/config.js';
import { checkWeights, type Weights, weightSpecs } from '../model/weights.js';
import { externalDataRef, isExternal } from '../onnx/external-data.js';
import { DataType, type ModelProto, type TensorProto } from '../onnx/onnx-types.js';
import { decodeF32, LITTLE_ENDIAN } from './half-float.js';

/** Initializer names that are model parameters rather than graph constants (`const_12`, RoPE tables). */
const PARAMETER_NAME = /^(model\.|lm_head\.|score\.)/;

function checkFloat32(t: TensorProto, source: string): number {
  if (t.dataType !== DataType.FLOAT) {
    throw invalidInput(
      `${source}: initializer ${t.name} has ONNX data type ${t.dataType}, expected float32 (${DataType.FLOAT})`,
      t.name,
      'write the model again with float32 weights',
    );
  }
  return t.dims.reduce((a, b) => a * b, 1);
}

function inlineFloat32(t: TensorProto, n: number): Float32Array {
  const out = new Float32Array(n);
  // The decoder has already checked that the payload fits the shape.
  if (t.rawData !== undefined) decodeF32(t.rawData, out);
  else if (t.floatData !== undefined) out.set(t.floatData);
  return out;
}

/** Reads `out.byteLength` bytes at `offset` of `file` into `out`, failing on a short file. */
async function readAt(file: FileHandle, out: Float32Array, offset: number, path: string, name: string) {
  const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  let done = 0;
  while (done < bytes.byteLength) {
    const chunk = Math.min(bytes.byteLength - done, 2 ** 30);
    const { bytesRead } = await file.read(bytes, done, chunk, offset + done);
    if (bytesRead === 0) {
      throw invalidInput(
        `${path} ends before the ${bytes.byteLength} bytes of ${name} at offset ${offset}`,
        path,
        'the data file is truncated or belongs to another model.onnx: write the model directory again',
      );
    }
    done += bytesRead;
  }
  if (!LITTLE_ENDIAN) {
    const copy = bytes.slice();
    decodeF32(copy, out);
  }
}

async function openData(path: string, source: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (cause) {
    throw new EngineError('NOT_FOUND', `${source} keeps its weights in ${path}, which cannot be read`, {
      field: path,
      fix: 'copy the whole model directory, model.onnx.data included',
      cause,
    });
  }
}

/** One parameter, read from model.onnx's bytes or model.onnx.data when asked for. */
export interface WeightLoader {
  shape: number[];
  length: number;
  load(): Promise<Float32Array>;
}

/**
 * Loaders for the parameters of `config` in a decoded ONNX model (`source`, the model.onnx path, names it in
 * errors and locates external data), checked first for presence, shape, dtype and data-file length; a
 * parameter-named initializer the config does not expect (an untied `lm_head.weight` under a tied config)
 * is an error. Each load opens the data file, reads one tensor and closes it.
 */
export async function weightLoaders(
  model: ModelProto,
  config: LlamaConfig,
  source: string,
): Promise<Map<string, WeightLoader>> {
  await checkOnnxParameters(model, config, source);
  const expected = new Set(weightSpecs(config).map((s) => s.name));
  const loaders = new Map<string, WeightLoader>();
  for (const t of model.graph.initializer) {
    if (!expected.has(t.name) && !PARAMETER_NAME.test(t.name)) continue;
    const n = checkFloat32(t, source);
    const load = async () => {
      if (!isExternal(t)) return inlineFloat32(t, n);
      const ref = externalDataRef(t);
      const path = join(dirname(source), ref.location);
      const file = await openData(path, source);
      try {
        const out = new Float32Array(n);
        await readAt(file, out, ref.offset, path, t.name);
        return out;
      } finally {
        await file.close();
      }
    };
    loaders.set(t.name, { shape: [...t.dims], length: n, load });
  }
  return loaders;
}

/** Every parameter of `config` in a decoded ONNX model, read into memory (see weightLoaders). */
export async function weightsFromOnnx(
  model: ModelProto,
  config: LlamaConfig,
  source: string,
): Promise<Weights> {
  const weights: Weights = new Map();
  for (const [name, loader] of await weightLoaders(model, config, source))
    weights.set(name, await loader.load());
  return weights;
}

/**
 * Checks the parameters of a decoded ONNX model against `config` (presence, shape, float32) and that any
 * data file they name holds their bytes, without reading a payload: for a caller that hands model.onnx to
 * ORT and needs no copy of the weights itself.
 */
export async function checkOnnxParameters(
  model: ModelProto,
  config: LlamaConfig,
  source: string,
): Promise<void> {
  const expected = new Set(weightSpecs(config).map((s) => s.name));
  const lengths = new Map<string, { length: number }>();
  const shapes = new Map<string, readonly number[]>();
  const ends = new Map<string, { end: number; name: string }>();
  for (const t of model.graph.initializer) {
    if (!expected.has(t.name) && !PARAMETER_NAME.test(t.name)) continue;
    lengths.set(t.name, { length: checkFloat32(t, source) });
    shapes.set(t.name, t.dims);
    if (!isExternal(t)) continue;
    const ref = externalDataRef(t);
    const path = join(dirname(source), ref.location);
    if ((ends.get(path)?.end ?? -1) < ref.offset + ref.length)
      ends.set(path, { end: ref.offset + ref.length, name: t.name });
  }
  checkWeights(config, lengths, source, shapes);
  for (const [path, { end, name }] of ends) {
    const size = await stat(path).then(
      (s) => s.size,
      (cause: unknown) => {
        throw new EngineError('NOT_FOUND', `${source} keeps its weights in ${path}, which cannot be read`, {
          field: path,
          fix: 'copy the whole model directory, model.onnx.data included',
          cause,
        });
      },
    );
    if (size < end)
      throw invalidInput(
        `${path} ends before the bytes of ${name} (${size} bytes, ${end} needed)`,
        path,
        'the data file is truncated or belongs to another model.onnx: write the model directory again',
      );
  }
}

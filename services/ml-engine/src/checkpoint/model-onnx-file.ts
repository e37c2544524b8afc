/**
 * `model.onnx` on disk, with its weights inline or in `model.onnx.data` (ONNX external data). The rule: a
 * model whose parameters take at most INLINE_WEIGHTS_MAX_BYTES keeps them inside model.onnx (one file, as
 * every model directory always had); a larger one writes every parameter to model.onnx.data at 4 KiB
 * aligned offsets and keeps only references in model.onnx, whose protobuf cannot exceed 2 GiB. Loading
 * accepts either layout, and a mix of both, whatever the size.
 */
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LlamaConfig } from '../model/config.js';
import { buildInferenceGraph, INFERENCE_OPSET } from '../model/inference-graph.js';
import { type Weights, weightSpecs } from '../model/weights.js';
import { EXTERNAL_DATA_ALIGNMENT, externalTensor } from '../onnx/external-data.js';
import { encodeModel } from '../onnx/onnx-encode.js';
import { dataTypeCode } from '../onnx/tensor-data.js';
import { encodeF32 } from './half-float.js';

export const MODEL_FILE = 'model.onnx';
export const MODEL_DATA_FILE = 'model.onnx.data';

/**
 * 1 GiB: far enough under protobuf's 2 GiB that the graph's own constants and structure always fit, and
 * small enough that every model up to ~250 M parameters stays a single file.
 */
export const INLINE_WEIGHTS_MAX_BYTES = 2 ** 30;

export interface ModelOnnxOptions {
  /** Parameters above this many bytes in total go to model.onnx.data (default INLINE_WEIGHTS_MAX_BYTES). */
  inlineMaxBytes?: number;
}

export function weightBytes(config: LlamaConfig): number {
  return weightSpecs(config).reduce((n, s) => n + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
}

/** Writes `dir`/model.onnx, and `dir`/model.onnx.data when the weights are too large to keep inline. */
export async function writeModelOnnx(
  dir: string,
  config: LlamaConfig,
  weights: Weights,
  options: ModelOnnxOptions = {},
): Promise<void> {
  const graph = buildInferenceGraph(config, weights);
  if (weightBytes(config) <= (options.inlineMaxBytes ?? INLINE_WEIGHTS_MAX_BYTES)) {
    await writeFile(join(dir, MODEL_FILE), graph.toBytes({ opset: INFERENCE_OPSET }));
    return;
  }
  const parameters = new Set(weightSpecs(config).map((s) => s.name));
  const payloads: { data: Float32Array; offset: number }[] = [];
  let end = 0;
  const model = graph.build({
    opset: INFERENCE_OPSET,
    externalize: (name, data, dims, dtype) => {
      if (!parameters.has(name) || !(data instanceof Float32Array)) return undefined;
      const offset = Math.ceil(end / EXTERNAL_DATA_ALIGNMENT) * EXTERNAL_DATA_ALIGNMENT;
      end = offset + data.byteLength;
      payloads.push({ data, offset });
      return externalTensor(name, dataTypeCode(dtype), dims, {
        location: MODEL_DATA_FILE,
        offset,
        length: data.byteLength,
      });
    },
  });
  // One tensor at a time: nothing but the weights themselves is held, however large the model.
  const file = await open(join(dir, MODEL_DATA_FILE), 'wx');
  try {
    for (const { data, offset } of payloads) {
      const bytes = encodeF32(data);
      let written = 0;
      while (written < bytes.byteLength) {
        // At most 1 GiB a call: one write(2) moves less than 2 GiB on Linux anyway.
        const chunk = Math.min(bytes.byteLength - written, 2 ** 30);
        const { bytesWritten } = await file.write(bytes, written, chunk, offset + written);
        written += bytesWritten;
      }
    }
    // The gaps are alignment padding; the file ends where the last tensor does.
    await file.truncate(end);
  } finally {
    await file.close();
  }
  await writeFile(join(dir, MODEL_FILE), encodeModel(model));
}

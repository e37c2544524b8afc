/**
 * The weights of a model directory live in `model.onnx` as initializers under their HF names, so there is
 * one copy on disk and it is the one ORT runs. Reading them back copies each payload once, straight into
 * its own aligned Float32Array (a view into the file bytes would pin the whole file and may be unaligned).
 */
import { invalidInput } from '../engine-error.js';
import type { LlamaConfig } from '../model/config.js';
import { checkWeights, type Weights, weightSpecs } from '../model/weights.js';
import { DataType, type ModelProto, type TensorProto } from '../onnx/onnx-types.js';
import { decodeF32 } from './half-float.js';

/** Initializer names that are model parameters rather than graph constants (`const_12`, RoPE tables). */
const PARAMETER_NAME = /^(model\.|lm_head\.|score\.)/;

function float32Of(t: TensorProto, source: string): Float32Array {
  if (t.dataType !== DataType.FLOAT) {
    throw invalidInput(
      `${source}: initializer ${t.name} has ONNX data type ${t.dataType}, expected float32 (${DataType.FLOAT})`,
      t.name,
      'write the model again with float32 weights',
    );
  }
  const n = t.dims.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  // The decoder has already checked that the payload fits the shape.
  if (t.rawData !== undefined) decodeF32(t.rawData, out);
  else if (t.floatData !== undefined) out.set(t.floatData);
  return out;
}

/**
 * The parameters of `config` from a decoded ONNX model, checked for presence and shape; a parameter-named
 * initializer the config does not expect (an untied `lm_head.weight` under a tied config) is an error.
 * `source` names the file in errors.
 */
export function weightsFromOnnx(model: ModelProto, config: LlamaConfig, source: string): Weights {
  const expected = new Set(weightSpecs(config).map((s) => s.name));
  const weights: Weights = new Map();
  const shapes = new Map<string, readonly number[]>();
  for (const t of model.graph.initializer) {
    if (!expected.has(t.name) && !PARAMETER_NAME.test(t.name)) continue;
    weights.set(t.name, float32Of(t, source));
    shapes.set(t.name, t.dims);
  }
  checkWeights(config, weights, source, shapes);
  return weights;
}

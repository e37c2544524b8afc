/**
 * Parameters and gradients as the training loop holds them: flat Float32Arrays keyed by HF parameter
 * name (`model.layers.0.self_attn.q_proj.weight`), the shape the ONNX training graph returns gradients in.
 */
import { invalidInput } from '../engine-error.js';

export type ParamMap = Map<string, Float32Array>;

/**
 * Checks that every gradient belongs to a parameter of the same length. A parameter without a gradient is
 * allowed: it is frozen for this step (e.g. a backbone while only a reward head trains).
 */
export function checkGrads(params: ParamMap, grads: ParamMap): void {
  for (const [name, grad] of grads) {
    const param = params.get(name);
    if (param === undefined) {
      throw invalidInput(
        `gradient for ${name} has no parameter to update`,
        `grads.${name}`,
        'pass the parameter map the gradients were computed for',
      );
    }
    if (param.length !== grad.length) {
      throw invalidInput(
        `gradient for ${name} has ${grad.length} values but the parameter has ${param.length}`,
        `grads.${name}`,
      );
    }
  }
}

/**
 * Weight decay is usually not applied to biases and normalisation gains (HF Trainer's default, after
 * "Decoupled Weight Decay Regularization"): shrinking an RMSNorm gain towards 0 shrinks the whole
 * activation, not a weight's magnitude. Llama names those `*_layernorm.weight` and `model.norm.weight`.
 */
export const DEFAULT_NO_DECAY = /(^|\.)bias$|norm/i;

export type NoDecay = RegExp | ((name: string) => boolean);

export function decays(name: string, noDecay: NoDecay): boolean {
  return typeof noDecay === 'function' ? !noDecay(name) : !noDecay.test(name);
}

/** A deep copy, so saved optimizer state does not change when training continues. */
export function copyParamMap(map: ParamMap): ParamMap {
  return new Map([...map].map(([name, values]) => [name, values.slice()]));
}

export function checkLearningRate(lr: number): void {
  if (!Number.isFinite(lr) || lr < 0)
    throw invalidInput(`learning rate must be a finite number >= 0, got ${lr}`, 'lr');
}

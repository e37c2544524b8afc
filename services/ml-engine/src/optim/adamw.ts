/**
 * AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"), as `torch.optim.AdamW` computes
 * it: decay the weight by `lr * weightDecay` apart from the gradient, then take the bias-corrected Adam
 * step `lr * m_hat / (sqrt(v_hat) + eps)`. Updates parameters in place.
 */
import { invalidInput } from '../engine-error.js';
import {
  checkGrads,
  checkLearningRate,
  copyParamMap,
  DEFAULT_NO_DECAY,
  decays,
  type NoDecay,
  type ParamMap,
} from './param-map.js';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay; default 0, as HF `TrainingArguments` (torch's own default is 0.01). */
  weightDecay?: number;
  /** Parameters exempt from weight decay (default: biases and norms, see DEFAULT_NO_DECAY). */
  noDecay?: NoDecay;
}

/** Everything needed to resume: the step count and both moment estimates, keyed like the parameters. */
export interface AdamWState {
  step: number;
  m: ParamMap;
  v: ParamMap;
}

export class AdamW {
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;
  private readonly noDecay: NoDecay;
  private t = 0;
  private m: ParamMap = new Map();
  private v: ParamMap = new Map();

  constructor(options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.noDecay = options.noDecay ?? DEFAULT_NO_DECAY;
    for (const [field, value] of [
      ['beta1', this.beta1],
      ['beta2', this.beta2],
    ] as const) {
      if (!(value >= 0 && value < 1)) throw invalidInput(`${field} must be in [0, 1), got ${value}`, field);
    }
    if (!(this.eps > 0)) throw invalidInput(`eps must be > 0, got ${this.eps}`, 'eps');
    if (!(this.weightDecay >= 0))
      throw invalidInput(`weightDecay must be >= 0, got ${this.weightDecay}`, 'weightDecay');
  }

  /** Number of updates applied so far. */
  get stepCount(): number {
    return this.t;
  }

  /** One update of every parameter that has a gradient, with learning rate `lr`. */
  step(params: ParamMap, grads: ParamMap, lr: number): void {
    checkLearningRate(lr);
    checkGrads(params, grads);
    this.t++;
    const bias1 = 1 - this.beta1 ** this.t;
    const bias2 = 1 - this.beta2 ** this.t;
    const stepSize = lr / bias1;
    const sqrtBias2 = Math.sqrt(bias2);
    const { beta1, beta2, eps } = this;
    for (const [name, g] of grads) {
      const p = params.get(name)!;
      const m = this.slot(this.m, name, p.length);
      const v = this.slot(this.v, name, p.length);
      const shrink = decays(name, this.noDecay) ? 1 - lr * this.weightDecay : 1;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        const mi = beta1 * m[i]! + (1 - beta1) * gi;
        const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i]! * shrink - (stepSize * mi) / (Math.sqrt(vi) / sqrtBias2 + eps);
      }
    }
  }

  state(): AdamWState {
    return { step: this.t, m: copyParamMap(this.m), v: copyParamMap(this.v) };
  }

  loadState(state: AdamWState): void {
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw invalidInput(`optimizer state step must be an integer >= 0, got ${state.step}`, 'state.step');
    }
    this.t = state.step;
    this.m = copyParamMap(state.m);
    this.v = copyParamMap(state.v);
  }

  private slot(slots: ParamMap, name: string, length: number): Float32Array {
    let values = slots.get(name);
    if (values === undefined) {
      values = new Float32Array(length);
      slots.set(name, values);
    } else if (values.length !== length) {
      throw invalidInput(
        `optimizer state for ${name} has ${values.length} values but the parameter has ${length}`,
        `state.${name}`,
        'resume with the optimizer state saved for this model',
      );
    }
    return values;
  }
}

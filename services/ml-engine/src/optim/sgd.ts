/**
 * Stochastic gradient descent as `torch.optim.SGD` computes it: optional L2 weight decay folded into the
 * gradient, optional heavy-ball momentum (`buf = momentum * buf + g`, the first buffer being `g` itself),
 * then `p -= lr * buf`. Updates parameters in place.
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

export interface SgdOptions {
  /** Momentum factor in [0, 1); default 0 (plain SGD). */
  momentum?: number;
  /** L2 penalty added to the gradient, as torch's SGD does; default 0. */
  weightDecay?: number;
  noDecay?: NoDecay;
}

export interface SgdState {
  step: number;
  momentum: ParamMap;
}

export class Sgd {
  private readonly momentum: number;
  private readonly weightDecay: number;
  private readonly noDecay: NoDecay;
  private t = 0;
  private buffers: ParamMap = new Map();

  constructor(options: SgdOptions = {}) {
    this.momentum = options.momentum ?? 0;
    this.weightDecay = options.weightDecay ?? 0;
    this.noDecay = options.noDecay ?? DEFAULT_NO_DECAY;
    if (!(this.momentum >= 0 && this.momentum < 1)) {
      throw invalidInput(`momentum must be in [0, 1), got ${this.momentum}`, 'momentum');
    }
    if (!(this.weightDecay >= 0))
      throw invalidInput(`weightDecay must be >= 0, got ${this.weightDecay}`, 'weightDecay');
  }

  get stepCount(): number {
    return this.t;
  }

  step(params: ParamMap, grads: ParamMap, lr: number): void {
    checkLearningRate(lr);
    checkGrads(params, grads);
    this.t++;
    for (const [name, g] of grads) {
      const p = params.get(name)!;
      const wd = decays(name, this.noDecay) ? this.weightDecay : 0;
      if (this.momentum === 0) {
        for (let i = 0; i < p.length; i++) p[i] = p[i]! - lr * (g[i]! + wd * p[i]!);
        continue;
      }
      let buf = this.buffers.get(name);
      const fresh = buf === undefined;
      if (buf === undefined) {
        buf = new Float32Array(p.length);
        this.buffers.set(name, buf);
      } else if (buf.length !== p.length) {
        throw invalidInput(
          `optimizer state for ${name} has ${buf.length} values but the parameter has ${p.length}`,
          `state.${name}`,
          'resume with the optimizer state saved for this model',
        );
      }
      for (let i = 0; i < p.length; i++) {
        const d = g[i]! + wd * p[i]!;
        const b = fresh ? d : this.momentum * buf[i]! + d;
        buf[i] = b;
        p[i] = p[i]! - lr * b;
      }
    }
  }

  state(): SgdState {
    return { step: this.t, momentum: copyParamMap(this.buffers) };
  }

  loadState(state: SgdState): void {
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw invalidInput(`optimizer state step must be an integer >= 0, got ${state.step}`, 'state.step');
    }
    this.t = state.step;
    this.buffers = copyParamMap(state.momentum);
  }
}

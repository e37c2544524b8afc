/**
 * Gradient accumulation: sum the gradients of several micro-batches, then scale once, so a global batch
 * larger than memory allows gives the same update as one big batch whose loss is the mean over
 * micro-batches.
 */
import { invalidInput } from '../engine-error.js';
import type { ParamMap } from './param-map.js';

export class GradAccumulator {
  private sums: ParamMap = new Map();
  private added = 0;

  /** Micro-batches added since the last `finish`. */
  get count(): number {
    return this.added;
  }

  /** Adds one micro-batch's gradients (copied; the caller may reuse its arrays). */
  add(grads: ParamMap): void {
    for (const [name, g] of grads) {
      const sum = this.sums.get(name);
      if (sum === undefined) {
        this.sums.set(name, g.slice());
      } else if (sum.length !== g.length) {
        throw invalidInput(
          `gradient for ${name} has ${g.length} values, earlier micro-batches had ${sum.length}`,
          `grads.${name}`,
        );
      } else {
        for (let i = 0; i < g.length; i++) sum[i] = sum[i]! + g[i]!;
      }
    }
    this.added++;
  }

  /**
   * The accumulated gradients times `scale`, and a reset for the next batch. The default 1 / count gives
   * the mean over micro-batches; pass 1 when each micro-batch loss was already weighted by its share of
   * the batch (e.g. by token count).
   */
  finish(scale?: number): ParamMap {
    if (this.added === 0) throw invalidInput('no gradients were accumulated before finish()', 'grads');
    const factor = scale ?? 1 / this.added;
    const out = this.sums;
    if (factor !== 1) {
      for (const g of out.values()) {
        for (let i = 0; i < g.length; i++) g[i] = g[i]! * factor;
      }
    }
    this.sums = new Map();
    this.added = 0;
    return out;
  }
}

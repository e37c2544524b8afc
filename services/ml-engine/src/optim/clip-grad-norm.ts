/**
 * Global-norm gradient clipping, as `torch.nn.utils.clip_grad_norm_`: one L2 norm over all gradients
 * together, and if it exceeds `maxNorm` every gradient is scaled by `maxNorm / (norm + 1e-6)`.
 */
import { invalidInput } from '../engine-error.js';
import type { ParamMap } from './param-map.js';

/** The L2 norm of all gradients as one vector, accumulated in double precision. */
export function globalGradNorm(grads: ParamMap): number {
  let sum = 0;
  for (const g of grads.values()) {
    for (let i = 0; i < g.length; i++) sum += g[i]! * g[i]!;
  }
  return Math.sqrt(sum);
}

/**
 * Clips in place and returns the norm before clipping (what trainers log as `grad_norm`). `maxNorm` 0
 * turns clipping off but still measures. A non-finite norm leaves the gradients untouched: scaling by
 * NaN would poison every parameter, and the caller should skip the step instead.
 */
export function clipGradNorm(grads: ParamMap, maxNorm: number): number {
  if (!(maxNorm >= 0) || !Number.isFinite(maxNorm)) {
    throw invalidInput(`maxGradNorm must be a finite number >= 0 (0 = off), got ${maxNorm}`, 'maxGradNorm');
  }
  const norm = globalGradNorm(grads);
  if (maxNorm === 0 || !Number.isFinite(norm) || norm <= maxNorm) return norm;
  const scale = maxNorm / (norm + 1e-6);
  for (const g of grads.values()) {
    for (let i = 0; i < g.length; i++) g[i] = g[i]! * scale;
  }
  return norm;
}

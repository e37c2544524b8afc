/**
 * Which examples go into which batch, reproducibly. Each epoch's order is drawn from its own generator,
 * seeded from (seed, epoch) alone, so a run resumed at epoch 3 computes exactly the order the
 * uninterrupted run used without replaying epochs 0-2.
 */
import { invalidInput } from '../engine-error.js';
import { Rng } from '../random/rng.js';

/** Murmur3's 32-bit finaliser: spreads nearby integers (epoch 0, 1, 2) to unrelated seeds. */
function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function checkCount(field: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw invalidInput(`${field} must be an integer >= ${min}, got ${value}`, field);
  }
}

/** The generator for one epoch of a seeded run. */
export function epochRng(seed: number, epoch: number): Rng {
  checkCount('seed', seed, 0);
  checkCount('epoch', epoch, 0);
  const base = new Rng(seed).nextU32();
  return new Rng(mix32(base ^ mix32(epoch + 0x632be5ab)));
}

/** The example order of one epoch: a seeded permutation of 0..n-1, or 0..n-1 itself without shuffling. */
export function epochOrder(n: number, epoch: number, seed: number, shuffle = true): number[] {
  checkCount('n', n, 0);
  const order = Array.from({ length: n }, (_, i) => i);
  return shuffle ? epochRng(seed, epoch).shuffle(order) : order;
}

export interface BatchOptions {
  /** Drop a last batch smaller than batchSize (default false, as torch's DataLoader). */
  dropLast?: boolean;
}

export function batchesPerEpoch(n: number, batchSize: number, options: BatchOptions = {}): number {
  checkCount('n', n, 0);
  checkCount('batchSize', batchSize, 1);
  return options.dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** Epoch `epoch`'s order cut into batches of `batchSize` example indices. */
export function batchIndices(
  n: number,
  batchSize: number,
  epoch: number,
  seed: number,
  shuffle = true,
  options: BatchOptions = {},
): number[][] {
  const count = batchesPerEpoch(n, batchSize, options);
  const order = epochOrder(n, epoch, seed, shuffle);
  return Array.from({ length: count }, (_, b) => order.slice(b * batchSize, (b + 1) * batchSize));
}

/** Where global batch number `step` (0-based, counted across epochs) falls, for resuming mid-epoch. */
export function locateStep(
  step: number,
  n: number,
  batchSize: number,
  options: BatchOptions = {},
): { epoch: number; batch: number } {
  checkCount('step', step, 0);
  const perEpoch = batchesPerEpoch(n, batchSize, options);
  if (perEpoch === 0) {
    throw invalidInput(
      `${n} examples make no batch of ${batchSize}`,
      'batchSize',
      'lower batchSize or keep the last batch',
    );
  }
  return { epoch: Math.floor(step / perEpoch), batch: step % perEpoch };
}

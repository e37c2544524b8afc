/**
 * What an iteration reports of its DPO training: each metric of the last step, averaged over the last
 * `steps` steps (one step's loss on one batch is noisy). A run's train stage reports its DPO loss and
 * accuracy from the trainer's training log through this.
 */
export function meanOfLastSteps(
  metrics: readonly Readonly<Record<string, number>>[],
  steps = 10,
): Record<string, number> {
  const tail = metrics.slice(-steps);
  const out: Record<string, number> = {};
  for (const k of Object.keys(tail.at(-1) ?? {})) {
    const xs = tail.map((m) => m[k]).filter((x): x is number => typeof x === 'number');
    if (xs.length) out[k] = xs.reduce((a, b) => a + b, 0) / xs.length;
  }
  return out;
}

/** Repeat-until-enough timing with medians: timings here are noisy, so figures are medians of repeats. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? (s[m] as number)
      : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Runs `fn` `warmup` times, then at least `repeats` times and at least `minSeconds`; returns seconds per run. */
export async function timeRepeats(
  fn: () => Promise<void>,
  o: { warmup: number; repeats: number; minSeconds: number },
): Promise<number[]> {
  for (let i = 0; i < o.warmup; i++) await fn();
  const out: number[] = [];
  const start = performance.now();
  while (out.length < o.repeats || performance.now() - start < o.minSeconds * 1000) {
    const t0 = performance.now();
    await fn();
    out.push((performance.now() - t0) / 1000);
  }
  return out;
}

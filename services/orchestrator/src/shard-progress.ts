/**
 * A sharded stage's progress as one bar, whichever executor runs the shards: a finished shard counts whole,
 * a running one as far as its own reports say, in the stage's unit. A shard's own total replaces its row
 * count when it reports one (a training shard is one row but many steps).
 */
/** A progress callback: `done` of `total` in `unit`. */
export type ProgressFn = (done: number, total: number, unit: string) => void;

export class ShardProgress {
  readonly done = new Set<number>();
  private readonly partial = new Map<number, number>();
  private readonly totals = new Map<number, number>();

  constructor(
    private readonly shards: readonly { rows: number }[],
    private readonly unit: string,
    private readonly onProgress?: ProgressFn,
  ) {}

  /** A shard's report: `done` of `total` in `unit` (other units, e.g. a trainer's epochs, are not counted). */
  update(shard: number, unit: string | undefined, done: number, total: number): void {
    if (unit === this.unit || unit === '' || unit === undefined) {
      this.partial.set(shard, done);
      if (total > 0) this.totals.set(shard, total);
    }
    this.report();
  }

  finish(shard: number): void {
    this.done.add(shard);
  }

  report(): void {
    let n = 0;
    let total = 0;
    this.shards.forEach((s, i) => {
      const size = this.totals.get(i) ?? s.rows;
      total += size;
      n += this.done.has(i) ? size : Math.min(this.partial.get(i) ?? 0, size);
    });
    this.onProgress?.(n, total, this.unit);
  }
}

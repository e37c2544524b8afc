/**
 * A progress line for long work: a bar, counts, rate and ETA. On a terminal it redraws in place; in a log
 * (CI, a pipe) it prints a plain line at most every few seconds, so logs stay readable.
 */
export interface ProgressOptions {
  label: string;
  total: number;
  unit?: string;
  stream?: NodeJS.WriteStream;
  /** Minimum milliseconds between plain (non-terminal) lines. */
  plainEveryMs?: number;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '--:--';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

export class ProgressBar {
  private readonly started = Date.now();
  private lastPlain = 0;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(private readonly o: ProgressOptions) {
    this.stream = o.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
  }

  update(done: number, detail = ''): void {
    const elapsed = Date.now() - this.started;
    const rate = elapsed > 50 ? done / (elapsed / 1000) : Number.NaN;
    const eta = done > 0 ? (elapsed / done) * (this.o.total - done) : Number.NaN;
    const width = 24;
    const filled = Math.round((width * Math.min(done, this.o.total)) / Math.max(this.o.total, 1));
    const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
    const unit = this.o.unit ?? 'it';
    const line = `${this.o.label} [${bar}] ${done}/${this.o.total} ${Number.isNaN(rate) ? '-' : rate.toFixed(rate < 10 ? 2 : 0)} ${unit}/s ETA ${formatDuration(eta)}${detail ? `  ${detail}` : ''}`;
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${line}`);
    } else if (Date.now() - this.lastPlain >= (this.o.plainEveryMs ?? 5000) || done >= this.o.total) {
      this.lastPlain = Date.now();
      this.stream.write(`${line}\n`);
    }
  }

  done(summary: string): void {
    if (this.tty) this.stream.write('\r\x1b[2K');
    this.stream.write(`${this.o.label}: ${summary} in ${formatDuration(Date.now() - this.started)}\n`);
  }
}

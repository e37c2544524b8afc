/**
 * A single-consumer queue read as an async iterable: producers `push` without waiting, the consumer pulls
 * in order, and `close` ends the iteration once what is queued has been read. Used for job watches, where a
 * slow reader must not hold up training: past `maxQueued` items the oldest droppable one is discarded.
 */

export interface EventChannelOptions<T> {
  /** Items kept for a slow reader before droppable ones are discarded, oldest first. */
  maxQueued?: number;
  /** Whether an item may be discarded under pressure (e.g. progress, not state changes). */
  droppable?(item: T): boolean;
  /** Called once when the reader stops (end reached, `break`, or the signal aborted). */
  onStop?(): void;
}

export class EventChannel<T> implements AsyncIterable<T> {
  private readonly queue: T[] = [];
  private closed = false;
  private wake: (() => void) | null = null;

  constructor(private readonly o: EventChannelOptions<T> = {}) {}

  push(item: T): void {
    if (this.closed) return;
    this.queue.push(item);
    const max = this.o.maxQueued ?? 1000;
    if (this.queue.length > max && this.o.droppable) {
      const i = this.queue.findIndex((x) => this.o.droppable?.(x));
      if (i >= 0) this.queue.splice(i, 1);
    }
    this.wake?.();
  }

  /** No more items; the reader still gets what is queued. */
  close(): void {
    this.closed = true;
    this.wake?.();
  }

  /** Iterates until closed and drained, or until `signal` aborts (then without the rest). */
  async *read(signal?: AbortSignal): AsyncGenerator<T> {
    const onAbort = (): void => this.wake?.();
    signal?.addEventListener('abort', onAbort);
    try {
      while (!signal?.aborted) {
        const next = this.queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (this.closed) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = null;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.closed = true;
      this.o.onStop?.();
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this.read();
  }
}

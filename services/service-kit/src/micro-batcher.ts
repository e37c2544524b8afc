/**
 * Dynamic batching for stateless forward passes (reward scores, preference comparisons): requests that
 * arrive while the model is busy, or within a short window of each other, are run together as one batch.
 * One batch is in flight at a time per batcher, so under load the queue fills while the model works and the
 * next batch is as large as the traffic allows; an idle batcher waits at most `windowMs` for company.
 */

export interface MicroBatcherOptions<Req, Res> {
  /** How long the first request of a batch waits for others; 0 waits one turn of the event loop. */
  windowMs: number;
  /** Run as soon as the queued requests reach this size (a single larger request runs alone). */
  maxBatchSize: number;
  /** The size of one request in the unit of maxBatchSize (e.g. responses to score). */
  sizeOf(req: Req): number;
  /** Runs one batch; returns one result per request, in order. */
  run(batch: Req[]): Promise<Res[]>;
  /** Called before each batch runs, e.g. for a batch-size histogram. */
  onBatch?(info: { requests: number; size: number; queued: number }): void;
}

interface Pending<Req, Res> {
  req: Req;
  size: number;
  resolve(res: Res): void;
  reject(err: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class MicroBatcher<Req, Res> {
  private queue: Array<Pending<Req, Res>> = [];
  private queuedSize = 0;
  private running = false;
  /** Cancels the pending window, when one is open. */
  private cancelWindow: (() => void) | null = null;

  constructor(private readonly o: MicroBatcherOptions<Req, Res>) {}

  /** Requests waiting for a batch (not counting the one in flight). */
  get depth(): number {
    return this.queue.length;
  }

  /** Queues a request; rejects with the signal's reason if it is aborted before its batch runs. */
  submit(req: Req, signal?: AbortSignal): Promise<Res> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Res>((resolve, reject) => {
      const p: Pending<Req, Res> = {
        req,
        size: this.o.sizeOf(req),
        resolve,
        reject,
        signal,
        onAbort: undefined,
      };
      if (signal) {
        p.onAbort = () => {
          const i = this.queue.indexOf(p);
          if (i < 0) return; // already in a running batch: its result is simply dropped
          this.queue.splice(i, 1);
          this.queuedSize -= p.size;
          reject(signal.reason);
        };
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.queue.push(p);
      this.queuedSize += p.size;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running) return; // the batch in flight flushes again when it ends
    if (this.queuedSize >= this.o.maxBatchSize) {
      void this.flush();
      return;
    }
    if (this.cancelWindow === null && this.queue.length > 0) {
      if (this.o.windowMs > 0) {
        const t = setTimeout(() => void this.flush(), this.o.windowMs);
        this.cancelWindow = () => clearTimeout(t);
      } else {
        const t = setImmediate(() => void this.flush());
        this.cancelWindow = () => clearImmediate(t);
      }
    }
  }

  private nextTurn(): void {
    if (this.cancelWindow !== null) return;
    const t = setImmediate(() => {
      this.cancelWindow = null;
      void this.flush();
    });
    this.cancelWindow = () => clearImmediate(t);
  }

  private take(): Array<Pending<Req, Res>> {
    const batch: Array<Pending<Req, Res>> = [];
    let size = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0] as Pending<Req, Res>;
      if (batch.length > 0 && size + next.size > this.o.maxBatchSize) break;
      this.queue.shift();
      this.queuedSize -= next.size;
      size += next.size;
      if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
      batch.push(next);
    }
    return batch;
  }

  private async flush(): Promise<void> {
    this.cancelWindow?.();
    this.cancelWindow = null;
    if (this.running) return;
    const batch = this.take();
    if (batch.length === 0) return;
    this.running = true;
    this.o.onBatch?.({
      requests: batch.length,
      size: batch.reduce((s, p) => s + p.size, 0),
      queued: this.queue.length,
    });
    try {
      const results = await this.o.run(batch.map((p) => p.req));
      batch.forEach((p, i) => {
        p.resolve(results[i] as Res);
      });
    } catch (err) {
      for (const p of batch) p.reject(err);
    } finally {
      this.running = false;
      // Whatever queued meanwhile has already waited a whole batch: run it next, without a window, but
      // after one turn of the event loop, so requests that arrived while a blocking forward pass held the
      // thread are read off their sockets and join it.
      if (this.queue.length > 0) this.nextTurn();
    }
  }
}

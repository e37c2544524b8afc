/**
 * A rate-limited work queue of object keys, with client-go's workqueue semantics: a key is queued at
 * most once, is never handed to two workers at a time, and a key added while it is being processed is
 * queued again when its worker calls done(). Failures back off per key, exponentially.
 */
import { invalidArgument } from '@rlhf/platform';

export interface WorkQueueOptions {
  /** First retry delay of addRateLimited; doubles per consecutive failure. Default 5 ms. */
  baseDelayMs?: number;
  /** Ceiling of the per-key retry delay. Default 60 000 ms. */
  maxDelayMs?: number;
}

export class WorkQueue<K extends string = string> {
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  /** Keys ready to hand out, in FIFO order. */
  private readonly queue: K[] = [];
  /** Keys that need processing: queued, or added again while being processed. */
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  /** Keys waiting for addAfter: when each becomes due, so an earlier request wins. */
  private readonly waiting = new Map<K, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<K, number>();
  private waiters: Array<() => void> = [];
  private shuttingDown = false;

  constructor(opts: WorkQueueOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs ?? 5;
    this.maxDelayMs = opts.maxDelayMs ?? 60_000;
    if (!(this.baseDelayMs > 0)) throw invalidArgument('baseDelayMs', 'must be positive', 'pass e.g. 5');
    if (!(this.maxDelayMs >= this.baseDelayMs))
      throw invalidArgument('maxDelayMs', 'must be at least baseDelayMs', 'pass e.g. 60000');
  }

  /** Queues `key` unless it is already queued; a key being processed is queued again on done(). */
  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.queue.push(key);
    this.waiters.shift()?.();
  }

  /** Queues `key` after `ms`; while it waits, a second call keeps whichever is due first. */
  addAfter(key: K, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const pending = this.waiting.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, ms);
    this.waiting.set(key, { at, timer });
  }

  /** Queues `key` after its backoff: baseDelayMs * 2^(failures so far), capped at maxDelayMs. */
  addRateLimited(key: K): void {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.addAfter(key, Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n));
  }

  /** Resets `key`'s backoff (after a success). */
  forget(key: K): void {
    this.failures.delete(key);
  }

  /** How many times `key` was added rate-limited since it was last forgotten. */
  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key, waiting for one; undefined once the queue is shut down. Call done(key) after. */
  async get(): Promise<K | undefined> {
    for (;;) {
      if (this.shuttingDown) return undefined;
      const key = this.queue.shift();
      if (key !== undefined) {
        this.dirty.delete(key);
        this.processing.add(key);
        return key;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Marks `key` processed; if it was added meanwhile, it is queued again. */
  done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.queue.push(key);
      this.waiters.shift()?.();
    }
  }

  /** Keys ready to be handed out (not counting those being processed or waiting for a delay). */
  len(): number {
    return this.queue.length;
  }

  /** Stops handing out keys: get() resolves undefined, adds are ignored, delayed adds are dropped. */
  shutdown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }
}

/** What a handler asks for: forget the key, retry it with backoff, or look again after a delay. */
export type WorkResult = 'done' | 'retry' | { requeueAfterMs: number };

/**
 * Runs `concurrency` workers that take keys from `queue` until it shuts down; resolves when every worker
 * has finished its current key. A thrown error is passed to onError and retried like 'retry'.
 */
export async function runWorkers<K extends string>(
  queue: WorkQueue<K>,
  concurrency: number,
  handler: (key: K) => Promise<WorkResult>,
  onError: (key: K, err: unknown) => void,
): Promise<void> {
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw invalidArgument('concurrency', `must be a positive integer, got ${concurrency}`);
  const worker = async () => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        const result = await handler(key);
        if (result === 'done') queue.forget(key);
        else if (result === 'retry') queue.addRateLimited(key);
        else {
          queue.forget(key);
          queue.addAfter(key, result.requeueAfterMs);
        }
      } catch (err) {
        try {
          onError(key, err);
        } catch {
          // A failing error reporter must not kill the worker.
        }
        queue.addRateLimited(key);
      } finally {
        queue.done(key);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

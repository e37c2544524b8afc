/**
 * NATS going away while a local run works. `watchOutages` follows this process's connection: a worker
 * that failed to reach NATS over the same stretch failed for the same reason, not its own, so the
 * supervisor restarts it without counting it. `throughOutages` reconciles the run again once NATS is back
 * when a step of this process failed during an outage (reconciling is idempotent: finished stages are
 * skipped, a stage computed again gives the same result, exactly as when the run is started again).
 */
import { asRlhfError, type Logger, type NatsConnection } from '@rlhf/platform';

export interface OutageWatch {
  /** True when NATS is down now, or was down at some time since `since` (Date.now()). */
  overlaps(since: number): boolean;
  /** Resolves once the connection is up (at once when it is). */
  up(): Promise<void>;
}

export function watchOutages(nc: NatsConnection): OutageWatch {
  let downSince: number | null = null;
  let lastBack = 0;
  let waiters: Array<() => void> = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' && downSince === null) downSince = Date.now();
      else if (s.type === 'reconnect') {
        downSince = null;
        lastBack = Date.now();
        for (const w of waiters) w();
        waiters = [];
      }
    }
  })();
  return {
    overlaps: (since) => downSince !== null || lastBack >= since,
    up: () => (downSince === null ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve))),
  };
}

/** Errors about the input, not the transport: retrying cannot help. */
const userErrors = new Set(['INVALID_ARGUMENT', 'NOT_FOUND', 'FAILED_PRECONDITION', 'PERMISSION_DENIED']);

/** Runs `attempt`, and again after NATS is back for as long as it fails during NATS outages. */
export async function throughOutages<T>(
  attempt: () => Promise<T>,
  o: { watch: OutageWatch; logger: Logger; notice?: (line: string) => void; signal?: AbortSignal },
): Promise<T> {
  for (;;) {
    const startedAt = Date.now();
    try {
      return await attempt();
    } catch (err) {
      const known = asRlhfError(err);
      const fatal = (known && userErrors.has(known.code)) || (o.signal?.aborted && err === o.signal.reason);
      if (fatal || !o.watch.overlaps(startedAt)) throw err;
      const message = 'NATS is unreachable; the run is paused until it is back';
      const why = err instanceof Error ? err.message : String(err);
      o.logger.warn({ err: why }, message);
      o.notice?.(`${message} (${why}); nothing is lost, finished stages are kept`);
      await o.watch.up();
      o.logger.warn('NATS is back; the run continues');
      o.notice?.('NATS is back; the run continues');
    }
  }
}

/**
 * The controller's view of what the stage processes recorded in JetStream KV (stage records, iteration
 * metrics, the setup plan, the last error), kept current by a KV watch: every change re-queues its run,
 * so progress reaches the RLHFRun status without polling, and a reconcile reads memory, not NATS.
 */
import type { KV } from '@nats-io/kv';
import type { ErrorRecord, IterationRecord, PlanRecord, StageRecord, SummaryRecord } from '@rlhf/workflow';
import { keyOf } from './resources.js';

export interface RecordsView {
  stage(iteration: number, stage: string): StageRecord | undefined;
  iteration(iteration: number): IterationRecord | undefined;
  plan(): PlanRecord | undefined;
  lastError(): ErrorRecord | undefined;
  /** Present once the last unit stored summary.json and report.html. */
  summary(): SummaryRecord | undefined;
}

const empty: RecordsView = {
  stage: () => undefined,
  iteration: () => undefined,
  plan: () => undefined,
  lastError: () => undefined,
  summary: () => undefined,
};

/** `<ns>.<run>.<rest>` -> ["<ns>/<run>", "<rest>"]; namespaces and names are DNS labels, without dots. */
function splitKvKey(key: string): [string, string] | null {
  const parts = key.split('.');
  if (parts.length < 3) return null;
  return [keyOf(parts[0] as string, parts[1] as string), parts.slice(2).join('.')];
}

export class RunRecords {
  private readonly runs = new Map<string, Map<string, unknown>>();
  private stopped = false;
  private watcher: { stop(): void } | null = null;

  private constructor(
    private readonly kv: KV,
    private readonly onChange: (runKey: string) => void,
  ) {}

  /** Loads every record, then follows changes until close(). */
  static async open(kv: KV, onChange: (runKey: string) => void): Promise<RunRecords> {
    const r = new RunRecords(kv, onChange);
    await r.start();
    return r;
  }

  private async start(): Promise<void> {
    // Watch first (updates only), then load: an update that races the load is applied after it.
    const iter = await this.kv.watch({ key: '>', include: 'updates' });
    this.watcher = iter;
    void (async () => {
      for await (const e of iter) {
        if (this.stopped) break;
        this.apply(e.key, e.operation === 'PUT' && e.value.length > 0 ? e.value : null, true);
      }
    })();
    const keys = await this.kv.keys('>');
    for await (const k of keys) {
      const e = await this.kv.get(k);
      if (e?.operation === 'PUT' && e.value.length > 0) this.apply(k, e.value, false);
    }
  }

  private apply(key: string, value: Uint8Array | null, notify: boolean): void {
    const split = splitKvKey(key);
    if (!split) return;
    const [run, rest] = split;
    let m = this.runs.get(run);
    if (value === null) m?.delete(rest);
    else {
      let parsed: unknown;
      try {
        parsed = JSON.parse(new TextDecoder().decode(value));
      } catch {
        return;
      }
      if (!m) {
        m = new Map();
        this.runs.set(run, m);
      }
      m.set(rest, parsed);
    }
    if (m?.size === 0) this.runs.delete(run);
    if (notify) this.onChange(run);
  }

  of(namespace: string, name: string): RecordsView {
    const m = this.runs.get(keyOf(namespace, name));
    if (!m) return empty;
    return {
      stage: (t, s) => m.get(`${t}.${s}`) as StageRecord | undefined,
      iteration: (t) => m.get(`${t}.metrics`) as IterationRecord | undefined,
      plan: () => m.get('plan') as PlanRecord | undefined,
      lastError: () => m.get('error') as ErrorRecord | undefined,
      summary: () => m.get('summary') as SummaryRecord | undefined,
    };
  }

  /** Purges every record of a run (its RLHFRun is being deleted). */
  async purge(namespace: string, name: string): Promise<void> {
    const keys = await this.kv.keys(`${namespace}.${name}.>`);
    const all: string[] = [];
    for await (const k of keys) all.push(k);
    for (const k of all) await this.kv.purge(k);
    this.runs.delete(keyOf(namespace, name));
  }

  close(): void {
    this.stopped = true;
    this.watcher?.stop();
  }
}

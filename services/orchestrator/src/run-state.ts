/**
 * Stage state in JetStream KV: a stage is done exactly when its record exists, and the record is written
 * only after every output it names is stored. A resumed run skips done stages and re-runs the rest (their
 * shard outputs are deterministic keys, so work already stored is reused or overwritten, never doubled).
 * The record types and keys are the workflow package's; this is their store.
 */
import type { KV } from '@nats-io/kv';
import {
  type ErrorRecord,
  type IterationRecord,
  type PlanRecord,
  type RunRecord,
  type RunRef,
  runKey,
  type StageRecord,
  type SummaryRecord,
  stageKey,
} from '@rlhf/workflow';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The part of a JetStream KV bucket RunState uses (a Map-backed object will do in tests). */
export type StateKv = Pick<KV, 'get' | 'put' | 'keys' | 'purge'>;

export class RunState {
  constructor(
    private readonly kv: StateKv,
    readonly run: RunRef,
  ) {}
  async stage(iteration: number, stage: string): Promise<StageRecord | null> {
    const e = await this.kv.get(stageKey(this.run, iteration, stage));
    if (e?.operation !== 'PUT' || e.value.length === 0) return null;
    return JSON.parse(dec.decode(e.value)) as StageRecord;
  }

  async finish(record: StageRecord): Promise<void> {
    await this.kv.put(stageKey(this.run, record.iteration, record.stage), enc.encode(JSON.stringify(record)));
  }

  /** Written once: a resumed process recomputes the same metrics and leaves the first record alone. */
  async putIteration(record: IterationRecord): Promise<void> {
    if (await this.iteration(record.iteration)) return;
    await this.kv.put(stageKey(this.run, record.iteration, 'metrics'), enc.encode(JSON.stringify(record)));
  }

  async iteration(iteration: number): Promise<IterationRecord | null> {
    return this.read<IterationRecord>(stageKey(this.run, iteration, 'metrics'));
  }

  async putPlan(record: PlanRecord): Promise<void> {
    if (await this.plan()) return;
    await this.kv.put(`${this.run.namespace}.${this.run.name}.plan`, enc.encode(JSON.stringify(record)));
  }

  async plan(): Promise<PlanRecord | null> {
    return this.read<PlanRecord>(`${this.run.namespace}.${this.run.name}.plan`);
  }

  /** Where the finished run's summary and report are (written after both are stored). */
  async putSummary(record: SummaryRecord): Promise<void> {
    await this.kv.put(`${this.run.namespace}.${this.run.name}.summary`, enc.encode(JSON.stringify(record)));
  }

  async putError(record: ErrorRecord): Promise<void> {
    await this.kv.put(`${this.run.namespace}.${this.run.name}.error`, enc.encode(JSON.stringify(record)));
  }

  async lastError(): Promise<ErrorRecord | null> {
    return this.read<ErrorRecord>(`${this.run.namespace}.${this.run.name}.error`);
  }

  private async read<T>(key: string): Promise<T | null> {
    const e = await this.kv.get(key);
    if (e?.operation !== 'PUT' || e.value.length === 0) return null;
    return JSON.parse(dec.decode(e.value)) as T;
  }

  async runRecord(): Promise<RunRecord | null> {
    const e = await this.kv.get(runKey(this.run));
    if (e?.operation !== 'PUT' || e.value.length === 0) return null;
    return JSON.parse(dec.decode(e.value)) as RunRecord;
  }

  async setRun(record: RunRecord): Promise<void> {
    await this.kv.put(runKey(this.run), enc.encode(JSON.stringify(record)));
  }

  /** Forgets every record of the run (a fresh start with --restart, or a changed spec). */
  async clear(): Promise<void> {
    const prefix = `${this.run.namespace}.${this.run.name}.`;
    const keys = await this.kv.keys(`${prefix}>`);
    for await (const k of keys) await this.kv.purge(k);
  }
}

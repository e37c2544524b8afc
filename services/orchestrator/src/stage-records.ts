/**
 * Stage state in JetStream KV: a stage is done exactly when its record exists, and the record is written
 * only after every output it names is stored. A resumed run skips done stages and re-runs the rest (their
 * shard outputs are deterministic keys, so work already stored is reused or overwritten, never doubled).
 */
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { RlhfRun } from '@rlhf/run-spec';
import type { PolicyMetrics } from './report/summary-types.js';
import { type RunRef, runKey, stageKey } from './run-layout.js';

export interface StageRecord {
  stage: string;
  iteration: number;
  startedAt: string;
  finishedAt: string;
  seconds: number;
  /** What the stage produced: output URIs, counts, metrics. */
  result: Record<string, unknown>;
}

/** What iteration t measured (t = 0 is pi_0), written after its evaluation; read by the controller. */
export interface IterationRecord extends PolicyMetrics {
  iteration: number;
  pairs?: number;
  dpoLoss?: number | null;
  dpoAccuracy?: number | null;
  finishedAt: string;
}

/** What setup resolved for the iterations (written once, before pi_0's evaluation). */
export interface PlanRecord {
  policy: string;
  prompts: string;
  evalPrompts?: string;
  rewardModel?: string;
  lengthPenalty: number;
}

export interface SummaryRecord {
  summary: string;
  report: string;
  bestIteration: number | null;
  finishedAt: string;
}

/** The last failure of a stage process, for the controller's Failed condition. */
export interface ErrorRecord {
  iteration: number;
  stage: string;
  message: string;
  at: string;
}

export interface RunRecord {
  specDigest: string;
  /** This incarnation of the run (new on a fresh start or --restart), see RunRef.epoch. */
  epoch?: string;
  phase: 'Running' | 'Succeeded' | 'Failed';
  message: string;
  updatedAt: string;
}

/** The run record's digest of a spec: a resumed run must have the spec its finished stages were made with. */
export function specDigest(run: RlhfRun): string {
  return createHash('sha256').update(JSON.stringify(run.spec)).digest('hex').slice(0, 16);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class RunState {
  constructor(
    private readonly kv: KV,
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

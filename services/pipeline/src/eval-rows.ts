/**
 * The EVALUATE stage's records: one JSONL row per (held-out prompt, sample), written by the shard workers
 * (policy-generator) and read back by whoever computes the stage's metrics (the orchestrator, through
 * `evaluationMetrics`). Both sides import this module, so the format has one definition:
 *
 *   {"prompt", "completion", "completion_ids", "finish_reason", "endedWithEos", "logp", "logpBaseline",
 *    "proxyReward", "gold", "grammatical", "words", "row", "sample"}
 *
 * `row` is the prompt's global index in the stage's input and `sample` the sample's index among the
 * prompt's n; rows come in (row, sample) order. `logp` and `logpBaseline` are sums of the completion's
 * token log-probs (EOS included when it ended with one) under the policy and the baseline (pi_0); they are
 * equal when the baseline is the policy. `proxyReward` is the reward model's raw score (no length penalty),
 * null when the run's judge is not a reward model; `gold` and `grammatical` are null without a gold reward.
 */
import { invalidInput } from '@rlhf/ml-engine';
import type { EvalSample } from './evaluation.js';

export interface EvalRow {
  prompt: string;
  completion: string;
  completion_ids: number[];
  finish_reason: 'eos' | 'length' | 'stop';
  endedWithEos: boolean;
  logp: number;
  logpBaseline: number;
  proxyReward: number | null;
  gold: number | null;
  grammatical: boolean | null;
  words: number;
  row: number;
  sample: number;
}

const finishReasons = new Set(['eos', 'length', 'stop']);

/** The rows as JSONL, one line each, in the order given. */
export function formatEvalRows(rows: readonly EvalRow[]): Uint8Array {
  const lines = rows.map((r) =>
    JSON.stringify({
      prompt: r.prompt,
      completion: r.completion,
      completion_ids: r.completion_ids,
      finish_reason: r.finish_reason,
      endedWithEos: r.endedWithEos,
      logp: r.logp,
      logpBaseline: r.logpBaseline,
      proxyReward: r.proxyReward,
      gold: r.gold,
      grammatical: r.grammatical,
      words: r.words,
      row: r.row,
      sample: r.sample,
    }),
  );
  return new TextEncoder().encode(lines.length ? `${lines.join('\n')}\n` : '');
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

const fieldError = (where: string, field: string, expected: string, got: unknown) =>
  invalidInput(
    `${where}: field "${field}" expected ${expected}, got ${describe(got)}`,
    `${where}:${field}`,
    'read the output of an EVALUATE shard (pipeline formatEvalRows)',
  );

/** One parsed line checked as an EvalRow; `where` (`source:line`) prefixes the errors. */
export function parseEvalRow(value: unknown, where = 'row'): EvalRow {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidInput(`${where}: expected a JSON object, got ${describe(value)}`, where);
  const r = value as Record<string, unknown>;
  const str = (f: string): string => {
    if (typeof r[f] !== 'string') throw fieldError(where, f, 'a string', r[f]);
    return r[f];
  };
  const num = (f: string): number => {
    const v = r[f];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw fieldError(where, f, 'a finite number', v);
    return v;
  };
  const numOrNull = (f: string): number | null => (r[f] === null ? null : num(f));
  const index = (f: string): number => {
    const v = r[f];
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= 0))
      throw fieldError(where, f, 'an integer >= 0', v);
    return v;
  };
  const bool = (f: string): boolean => {
    if (typeof r[f] !== 'boolean') throw fieldError(where, f, 'true or false', r[f]);
    return r[f];
  };
  const prompt = str('prompt');
  const completion = str('completion');
  const ids = r.completion_ids;
  if (!(Array.isArray(ids) && ids.every((id) => Number.isInteger(id) && id >= 0)))
    throw fieldError(where, 'completion_ids', 'an array of token ids', ids);
  const finish = str('finish_reason');
  if (!finishReasons.has(finish)) throw fieldError(where, 'finish_reason', 'eos, length or stop', finish);
  return {
    prompt,
    completion,
    completion_ids: ids as number[],
    finish_reason: finish as EvalRow['finish_reason'],
    endedWithEos: bool('endedWithEos'),
    logp: num('logp'),
    logpBaseline: num('logpBaseline'),
    proxyReward: numOrNull('proxyReward'),
    gold: numOrNull('gold'),
    grammatical: r.grammatical === null ? null : bool('grammatical'),
    words: index('words'),
    row: index('row'),
    sample: r.sample === undefined ? 0 : index('sample'),
  };
}

/**
 * An EvalRow as the EvalSample `evaluationMetrics` takes: the baseline's log-prob becomes `logpInitial`
 * (so the metrics' KL is KL(policy || baseline)), and a missing proxy reward becomes NaN (the metrics'
 * proxy reward is then NaN: no reward model judged the samples).
 */
export function evalSampleFromRow(row: EvalRow): EvalSample {
  return {
    prompt: row.prompt,
    completion: row.completion,
    endedWithEos: row.endedWithEos,
    logp: row.logp,
    logpInitial: row.logpBaseline,
    proxyReward: row.proxyReward ?? Number.NaN,
    gold: row.gold,
    grammatical: row.grammatical,
    words: row.words,
  };
}

/** The rows of one EVALUATE output artifact; errors name `<source>:<line>` and the field. */
export function parseEvalRowsJsonl(data: Uint8Array | string, source: string): EvalRow[] {
  let text: string;
  try {
    text = typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw invalidInput(`${source} is not valid UTF-8`, source, 'read the output of an EVALUATE shard');
  }
  const rows: EvalRow[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = i === 0 ? raw.replace(/^\uFEFF/, '') : raw;
    if (line.trim() === '') return;
    const where = `${source}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (cause) {
      throw invalidInput(`${where}: invalid JSON: ${(cause as Error).message}`, where);
    }
    rows.push(parseEvalRow(value, where));
  });
  if (rows.length === 0)
    throw invalidInput(`${source} has no evaluation rows`, source, 'an EVALUATE shard writes at least one');
  return rows;
}

/** The EvalSamples of one EVALUATE output artifact, in its row order. */
export function parseEvalRows(data: Uint8Array | string, source: string): EvalSample[] {
  return parseEvalRowsJsonl(data, source).map(evalSampleFromRow);
}

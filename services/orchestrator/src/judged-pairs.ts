/**
 * The PAIR stage: chosen/rejected pairs from judged generations (step 4 of the paper's Algorithm 2), used by
 * a run and by `rlhf data pairs`. Each judged record is checked first, with errors naming the file, the line
 * and the field. Pairs carry the responses' token ids as sampled when the record has them (text would be
 * re-tokenized and need not give the same ids back), and their text otherwise or when asked for.
 */
import { describeRowShape, Rng } from '@rlhf/ml-engine';
import { buildPair, type PairStrategy } from '@rlhf/pipeline';
import { type ArtifactStore, invalidArgument } from '@rlhf/platform';
import type { PairSample } from '@rlhf/workflow';
import { readJsonl, writeJsonl } from './jsonl-artifacts.js';

export type { PairSample };

/** A judged generation record: what the judge stage and `rlhf judge` write. */
export interface JudgedRecord {
  prompt: string;
  responses: string[];
  rewards: number[];
  response_ids?: number[][];
}

const FORMAT =
  'write one {"prompt", "responses": [...], "rewards": [...]} object per line (`rlhf judge` writes them)';

/** Checks one judged record; `where` is `<file>:<line>`. */
export function parseJudgedRecord(value: unknown, where: string): JudgedRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidArgument(where, 'expected a JSON object', FORMAT);
  const r = value as Record<string, unknown>;
  if (r.responses === undefined)
    throw invalidArgument(`${where}:responses`, `${describeRowShape(r)} row has no "responses"`, FORMAT);
  if (typeof r.prompt !== 'string') throw invalidArgument(`${where}:prompt`, 'expected a string', FORMAT);
  const { responses, rewards, response_ids: ids } = r;
  if (!Array.isArray(responses) || responses.some((x) => typeof x !== 'string'))
    throw invalidArgument(`${where}:responses`, 'expected an array of strings', FORMAT);
  if (rewards === undefined)
    throw invalidArgument(
      `${where}:rewards`,
      'is missing: this record was not judged',
      'judge the file first: rlhf judge',
    );
  if (!Array.isArray(rewards) || rewards.some((x) => typeof x !== 'number' || !Number.isFinite(x)))
    throw invalidArgument(`${where}:rewards`, 'expected an array of finite numbers', FORMAT);
  if (rewards.length !== responses.length)
    throw invalidArgument(
      `${where}:rewards`,
      `has ${rewards.length} entries for ${responses.length} responses`,
      'give one reward per response',
    );
  const record: JudgedRecord = { prompt: r.prompt, responses, rewards };
  if (ids !== undefined) {
    const valid =
      Array.isArray(ids) &&
      ids.length === responses.length &&
      ids.every((row) => Array.isArray(row) && row.every((id) => Number.isInteger(id) && id >= 0));
    if (!valid)
      throw invalidArgument(
        `${where}:response_ids`,
        'expected one array of token ids per response',
        'drop response_ids to pair by text, or keep them as rlhf generate wrote them',
      );
    record.response_ids = ids as number[][];
  }
  return record;
}

export interface PairOptions {
  strategy: PairStrategy;
  seed: number;
  /** Write text pairs even when the records carry token ids. */
  text?: boolean;
}

export interface PairResult {
  /** Pairs written. */
  pairs: number;
  /** Judged records read. */
  records: number;
  /** Mean reward over every judged response. */
  meanScore: number;
  /** The first few pairs, as text. */
  samples: PairSample[];
}

/** Pairs from judged shards, in record order, written to `output` as JSONL. */
export async function buildPairs(
  store: ArtifactStore,
  judged: readonly string[],
  output: string,
  options: PairOptions,
): Promise<PairResult> {
  const rng = new Rng(options.seed);
  const rows: Array<Record<string, unknown>> = [];
  const samples: PairSample[] = [];
  let records = 0;
  let sum = 0;
  let count = 0;
  for (const uri of judged) {
    for (const r of await readJsonl(store, uri, parseJudgedRecord)) {
      records++;
      for (const s of r.rewards) {
        sum += s;
        count++;
      }
      const ids = options.text ? undefined : r.response_ids;
      const pair = buildPair(
        {
          responses: r.responses.map((text, k) => ({ text, ids: ids?.[k] })),
          scores: r.rewards,
          key: (x) => (x.ids ? x.ids.join(',') : x.text),
        },
        options.strategy,
        rng,
      );
      if (!pair) continue;
      rows.push(
        pair.chosen.ids && pair.rejected.ids
          ? {
              prompt: r.prompt,
              chosen_ids: pair.chosen.ids,
              rejected_ids: pair.rejected.ids,
              margin: pair.margin,
            }
          : { prompt: r.prompt, chosen: pair.chosen.text, rejected: pair.rejected.text, margin: pair.margin },
      );
      if (samples.length < 8)
        samples.push({
          prompt: r.prompt,
          chosen: pair.chosen.text,
          rejected: pair.rejected.text,
          chosenScore: r.rewards[pair.chosenIndex] as number,
          rejectedScore: r.rewards[pair.rejectedIndex] as number,
        });
    }
  }
  await writeJsonl(store, output, rows);
  return { pairs: rows.length, records, meanScore: count ? sum / count : Number.NaN, samples };
}

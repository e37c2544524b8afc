/**
 * The stages that only move data, run by the orchestrator itself: choosing each iteration's prompts
 * (seeded, without replacement across iterations), building chosen/rejected pairs from judged
 * generations, and turning evaluation rows into the iteration's metrics.
 */
import { parsePairRecord, Rng, type TextOrIds } from '@rlhf/ml-engine';
import type { EvalSample } from '@rlhf/pipeline';
import { type EvalMetrics, evaluationMetrics, parseEvalRows } from '@rlhf/pipeline';
import { type ArtifactStore, invalidArgument } from '@rlhf/platform';
import { readJsonl, writeJsonl } from './jsonl-artifacts.js';
import type { PairSample } from './judged-pairs.js';

/** The prompts of iteration t: a seeded permutation of the dataset, taken in consecutive slices. */
export function iterationPrompts<T>(all: readonly T[], perIteration: number, seed: number, t: number): T[] {
  const order = new Rng(seed).shuffle(all.map((_, i) => i));
  const start = ((t - 1) * perIteration) % Math.max(order.length, 1);
  const picked = order.slice(start, start + perIteration);
  if (picked.length < perIteration) picked.push(...order.slice(0, perIteration - picked.length));
  return picked.map((i) => all[i] as T);
}

export interface LabelledPair {
  /** The texts, for the run's samples (a conversation's messages joined, token ids counted). */
  prompt: string;
  chosen: string;
  rejected: string;
  /** The row as given, what the trainer reads: it renders conversations with its model's chat template. */
  row: Record<string, unknown>;
}

const sampleText = (t: TextOrIds) => ('text' in t ? t.text : `(${t.ids.length} token ids)`);

/**
 * The rows of an offline pair dataset (spec.pairs.dataset), JSONL or Parquet, each checked as a preference
 * row (any TRL preference format, UltraFeedback); errors name the row.
 */
export async function readLabelledPairs(
  store: ArtifactStore,
  uri: string,
  field: string,
): Promise<LabelledPair[]> {
  const rows = await readJsonl(store, uri, (value, where): LabelledPair => {
    let pair: ReturnType<typeof parsePairRecord>;
    try {
      pair = parsePairRecord(value, where);
    } catch (err) {
      const e = err as Error & { fix?: string; field?: string };
      throw invalidArgument(
        `${field} (${e.field ?? where})`,
        e.message,
        e.fix ?? 'see docs/DATA.md for the preference formats',
      );
    }
    return {
      prompt: sampleText(pair.prompt),
      chosen: sampleText(pair.chosen),
      rejected: sampleText(pair.rejected),
      row: value as Record<string, unknown>,
    };
  });
  if (rows.length === 0)
    throw invalidArgument(field, `${uri} holds no pairs`, 'point it at a non-empty dataset');
  return rows;
}

/** Iteration t's slice of an offline pair dataset: the next `perIteration` pairs in file order, wrapping. */
export async function writeOfflinePairs(
  store: ArtifactStore,
  all: readonly LabelledPair[],
  perIteration: number,
  t: number,
  output: string,
): Promise<{ pairs: number; meanScore: number; samples: PairSample[] }> {
  const picked: LabelledPair[] = [];
  for (let k = 0; k < Math.min(perIteration, all.length); k++)
    picked.push(all[((t - 1) * perIteration + k) % all.length] as LabelledPair);
  await writeJsonl(
    store,
    output,
    picked.map((p) => p.row),
  );
  const samples = picked.slice(0, 8).map(({ prompt, chosen, rejected }) => ({
    prompt,
    chosen,
    rejected,
    chosenScore: Number.NaN,
    rejectedScore: Number.NaN,
  }));
  return { pairs: picked.length, meanScore: Number.NaN, samples };
}

export async function readEvalSamples(
  store: ArtifactStore,
  outputs: readonly string[],
): Promise<EvalSample[]> {
  const all: EvalSample[] = [];
  for (const uri of outputs) all.push(...parseEvalRows(await store.get(uri), uri));
  return all;
}

export function metricsOf(samples: readonly EvalSample[], baseline: readonly EvalSample[]): EvalMetrics {
  return evaluationMetrics(samples, baseline);
}

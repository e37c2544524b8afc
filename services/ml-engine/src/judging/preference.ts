/**
 * Pairwise preference judgements from a causal LM trained on the A/B format (train/preference-format.ts):
 * P(a > b) = p_A / (p_A + p_B) at the answer position, averaged over both presentation orders so a model's
 * position bias cancels. Ranking n responses uses a knock-out tournament (n - 1 comparisons to find the
 * best, which is all maxMin pairing needs, plus one more pass for the worst) or a full round robin.
 */
import type { LoadedModelDir } from '../checkpoint/model-dir.js';
import { invalidInput } from '../engine-error.js';
import { headDim } from '../model/config.js';
import type { ModelRunner, TensorValue } from '../runtime/ort-session.js';
import { textPromptIds } from '../tokenizer/prompt-ids.js';
import { answerIds, preferencePrompt } from '../train/preference-format.js';

export interface Comparison {
  /** Debiased P(a > b): the mean of the two one-order estimates. */
  probABetter: number;
  /** P(a > b) with a shown first. */
  aFirst: number;
  /** P(a > b) with b shown first. */
  bFirst: number;
}

async function firstIsBetter(
  model: LoadedModelDir,
  session: ModelRunner,
  prompts: string[],
): Promise<number[]> {
  const tok = model.tokenizer;
  const { a, b } = answerIds(tok);
  const rows = prompts.map((p) => textPromptIds(tok, p));
  const maxLen = model.config.max_position_embeddings;
  const seq = Math.max(...rows.map((r) => r.length));
  if (seq > maxLen)
    throw invalidInput(
      `a comparison has ${seq} tokens, more than the model's ${maxLen} positions`,
      'responses',
      'shorten the responses',
    );
  const B = rows.length;
  // Left-pad so every row's answer position is the last column.
  const ids = new BigInt64Array(B * seq).fill(BigInt(tok.padId));
  const mask = new BigInt64Array(B * seq);
  const pos = new BigInt64Array(B * seq);
  rows.forEach((r, i) => {
    const off = seq - r.length;
    r.forEach((id, t) => {
      ids[i * seq + off + t] = BigInt(id);
      mask[i * seq + off + t] = 1n;
      pos[i * seq + off + t] = BigInt(t);
    });
  });
  const feeds: Record<string, TensorValue> = {
    input_ids: { data: ids, dims: [B, seq] },
    attention_mask: { data: mask, dims: [B, seq] },
    position_ids: { data: pos, dims: [B, seq] },
  };
  const hd = headDim(model.config);
  for (let i = 0; i < model.config.num_hidden_layers; i++) {
    for (const part of ['key', 'value'])
      feeds[`past_key_values.${i}.${part}`] = {
        data: new Float32Array(0),
        dims: [B, model.config.num_key_value_heads, 0, hd],
      };
  }
  const out = await session.run(feeds, ['logits']);
  const logits = out.logits?.data as Float32Array;
  const V = model.config.vocab_size;
  return rows.map((_, i) => {
    const base = (i * seq + seq - 1) * V;
    const la = logits[base + a] as number;
    const lb = logits[base + b] as number;
    // p_A / (p_A + p_B) = sigmoid(logit_A - logit_B): the softmax normaliser cancels.
    return 1 / (1 + Math.exp(lb - la));
  });
}

/** Compares many (prompt, a, b) triples in one batch, both orders each. */
export async function comparePairs(
  model: LoadedModelDir,
  session: ModelRunner,
  triples: ReadonlyArray<{ prompt: string; a: string; b: string }>,
): Promise<Comparison[]> {
  if (triples.length === 0) return [];
  const prompts = triples.flatMap((t) => [
    preferencePrompt(t.prompt, t.a, t.b),
    preferencePrompt(t.prompt, t.b, t.a),
  ]);
  const p = await firstIsBetter(model, session, prompts);
  return triples.map((_, i) => {
    const aFirst = p[2 * i] as number;
    const bFirst = 1 - (p[2 * i + 1] as number);
    return { probABetter: (aFirst + bFirst) / 2, aFirst, bFirst };
  });
}

export interface Ranking {
  /** Response indices, best first. */
  ranking: number[];
  /** A score per response (request order), higher is better. */
  scores: number[];
  comparisons: number;
}

/**
 * Knock-out tournament. Winners advance in rounds (each round's matches run as one batch); the champion
 * ranks first. The remaining order comes from each response's mean win probability over its matches, with
 * a second knock-out among first-round losers to find a reliable worst (what maxMin pairing needs).
 */
export async function rankTournament(
  model: LoadedModelDir,
  session: ModelRunner,
  prompt: string,
  responses: readonly string[],
): Promise<Ranking> {
  const n = responses.length;
  if (n < 2) throw invalidInput(`ranking needs at least 2 responses, got ${n}`, 'responses');
  const wins = new Array<number>(n).fill(0);
  const played = new Array<number>(n).fill(0);
  let comparisons = 0;
  const playRound = async (field: number[], preferLoser: boolean): Promise<number[]> => {
    const pairs: Array<[number, number]> = [];
    for (let i = 0; i + 1 < field.length; i += 2) pairs.push([field[i] as number, field[i + 1] as number]);
    const results = await comparePairs(
      model,
      session,
      pairs.map(([a, b]) => ({ prompt, a: responses[a] as string, b: responses[b] as string })),
    );
    comparisons += pairs.length;
    const next: number[] = [];
    pairs.forEach(([a, b], k) => {
      const p = (results[k] as Comparison).probABetter;
      wins[a] = (wins[a] as number) + p;
      wins[b] = (wins[b] as number) + 1 - p;
      played[a] = (played[a] as number) + 1;
      played[b] = (played[b] as number) + 1;
      const aWins = p >= 0.5;
      next.push(preferLoser ? (aWins ? b : a) : aWins ? a : b);
    });
    if (field.length % 2 === 1) next.push(field[field.length - 1] as number);
    return next;
  };
  let field = Array.from({ length: n }, (_, i) => i);
  const firstLosers: number[] = [];
  let round = 0;
  while (field.length > 1) {
    const next = await playRound(field, false);
    if (round === 0) firstLosers.push(...field.filter((i) => !next.includes(i)));
    field = next;
    round++;
  }
  const best = field[0] as number;
  let worstField = firstLosers.length > 0 ? firstLosers : [];
  while (worstField.length > 1) worstField = await playRound(worstField, true);
  const worst = worstField[0];
  const scores = wins.map((w, i) => (played[i] ? w / (played[i] as number) : 0.5));
  const middle = Array.from({ length: n }, (_, i) => i)
    .filter((i) => i !== best && i !== worst)
    .sort((x, y) => (scores[y] as number) - (scores[x] as number) || x - y);
  const ranking = [best, ...middle, ...(worst !== undefined && worst !== best ? [worst] : [])];
  return { ranking, scores, comparisons };
}

/** Every pair compared once; scores are mean win probabilities. n (n - 1) / 2 comparisons in one batch. */
export async function rankRoundRobin(
  model: LoadedModelDir,
  session: ModelRunner,
  prompt: string,
  responses: readonly string[],
): Promise<Ranking> {
  const n = responses.length;
  if (n < 2) throw invalidInput(`ranking needs at least 2 responses, got ${n}`, 'responses');
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) pairs.push([i, j]);
  const results = await comparePairs(
    model,
    session,
    pairs.map(([a, b]) => ({ prompt, a: responses[a] as string, b: responses[b] as string })),
  );
  const total = new Array<number>(n).fill(0);
  pairs.forEach(([a, b], k) => {
    const p = (results[k] as Comparison).probABetter;
    total[a] = (total[a] as number) + p;
    total[b] = (total[b] as number) + 1 - p;
  });
  const scores = total.map((t) => t / (n - 1));
  const ranking = Array.from({ length: n }, (_, i) => i).sort(
    (x, y) => (scores[y] as number) - (scores[x] as number) || x - y,
  );
  return { ranking, scores, comparisons: pairs.length };
}

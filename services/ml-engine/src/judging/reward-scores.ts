/**
 * Bradley-Terry reward scores from a scalar-head model (model.onnx with `scores` output), batched, with the
 * length penalty of the paper's "concise" variant: penalised = r(x, y) - lambda * chars(y).
 */
import type { LoadedModelDir } from '../checkpoint/model-dir.js';
import { invalidInput } from '../engine-error.js';
import type { ModelRunner, TensorValue } from '../runtime/ort-session.js';
import { specialPrefixLength, textPromptIds } from '../tokenizer/prompt-ids.js';

export interface ScoreInput {
  prompt: string;
  responses: string[];
}

export interface ScoredItem {
  rewards: number[];
  penalizedRewards: number[];
}

/**
 * Rows are the prompt with the tokenizer's own special tokens, the response, EOS (tokenizer/prompt-ids.ts),
 * right-padded; the head reads the EOS position.
 */
export async function scoreResponses(
  model: LoadedModelDir,
  session: ModelRunner,
  items: readonly ScoreInput[],
  lengthPenalty: number,
  batchSize = 64,
): Promise<ScoredItem[]> {
  if (!(lengthPenalty >= 0))
    throw invalidInput(`length_penalty must be >= 0, got ${lengthPenalty}`, 'length_penalty');
  const tok = model.tokenizer;
  const maxLen = model.config.max_position_embeddings;
  const rows: number[][] = [];
  const keep = specialPrefixLength(tok);
  for (const item of items) {
    const prompt = textPromptIds(tok, item.prompt);
    for (const r of item.responses) {
      let ids = [...prompt, ...tok.encode(r), tok.eosId];
      // Keep the end (the EOS the head reads) when a row is too long: drop text after the leading specials.
      if (ids.length > maxLen) ids = [...ids.slice(0, keep), ...ids.slice(ids.length - maxLen + keep)];
      rows.push(ids);
    }
  }
  const scores = new Float64Array(rows.length);
  for (let s = 0; s < rows.length; s += batchSize) {
    const batch = rows.slice(s, s + batchSize);
    const seq = Math.max(...batch.map((r) => r.length));
    const ids = new BigInt64Array(batch.length * seq).fill(BigInt(tok.padId));
    const mask = new BigInt64Array(batch.length * seq);
    batch.forEach((r, b) => {
      r.forEach((id, t) => {
        ids[b * seq + t] = BigInt(id);
        mask[b * seq + t] = 1n;
      });
    });
    const feeds: Record<string, TensorValue> = {
      input_ids: { data: ids, dims: [batch.length, seq] },
      attention_mask: { data: mask, dims: [batch.length, seq] },
    };
    const out = await session.run(feeds, ['scores']);
    scores.set(out.scores?.data as Float32Array, s);
  }
  let k = 0;
  return items.map((item) => {
    const rewards = item.responses.map(() => scores[k++] as number);
    return {
      rewards,
      penalizedRewards: rewards.map((r, i) => r - lengthPenalty * [...(item.responses[i] as string)].length),
    };
  });
}

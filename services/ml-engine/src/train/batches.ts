/**
 * Padded batch feeds for the training graphs. Rows are right-padded to the longest row of the batch;
 * position t carries the label of token t + 1.
 */
import type { TensorValue } from '../runtime/ort-session.js';
import type { Example, PairExample } from './examples.js';

export type Feeds = Record<string, TensorValue>;

function pack(
  rows: readonly Example[],
  pad: number,
): { feeds: Feeds; targetMask: Float32Array; seq: number } {
  const batch = rows.length;
  const seq = Math.max(1, ...rows.map((r) => r.ids.length));
  const ids = new BigInt64Array(batch * seq).fill(BigInt(pad));
  const mask = new BigInt64Array(batch * seq);
  const labels = new BigInt64Array(batch * seq).fill(BigInt(pad));
  const lossMask = new Float32Array(batch * seq);
  rows.forEach((r, b) => {
    for (let t = 0; t < r.ids.length; t++) {
      ids[b * seq + t] = BigInt(r.ids[t] as number);
      mask[b * seq + t] = 1n;
      if (t + 1 < r.ids.length) {
        labels[b * seq + t] = BigInt(r.ids[t + 1] as number);
        lossMask[b * seq + t] = r.targets[t + 1] ? 1 : 0;
      }
    }
  });
  const dims = [batch, seq];
  return {
    feeds: {
      input_ids: { data: ids, dims },
      attention_mask: { data: mask, dims },
      labels: { data: labels, dims },
      loss_mask: { data: lossMask, dims },
    },
    targetMask: lossMask,
    seq,
  };
}

/** SFT / preference-model batches: input_ids, attention_mask, labels, loss_mask. */
export function lmFeeds(rows: readonly Example[], pad: number): Feeds {
  return pack(rows, pad).feeds;
}

/** Reward-model batches: the chosen rows, then the rejected rows. */
export function rewardFeeds(pairs: readonly PairExample[], pad: number): Feeds {
  const { feeds } = pack([...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)], pad);
  return { input_ids: feeds.input_ids as TensorValue, attention_mask: feeds.attention_mask as TensorValue };
}

/** DPO batches: chosen rows then rejected rows, their reference log-probs, and the NLL mask (chosen only). */
export function dpoFeeds(pairs: readonly PairExample[], pad: number, referenceLogps: Float32Array): Feeds {
  const { feeds, targetMask, seq } = pack(
    [...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)],
    pad,
  );
  const nll = targetMask.slice();
  nll.fill(0, pairs.length * seq);
  return {
    ...feeds,
    reference_logps: { data: referenceLogps, dims: [2 * pairs.length] },
    nll_mask: { data: nll, dims: [2 * pairs.length, seq] },
  };
}

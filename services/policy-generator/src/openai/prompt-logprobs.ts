/**
 * vLLM's `prompt_logprobs`: the model's log-prob of each prompt token given the tokens before it (none for the
 * first, BOS), the same quantity the sampled tokens' logprobs are (log-softmax before temperature, top-k and
 * top-p). One forward pass of the engine's forward-only `logp` graph over the prompt, which outputs every
 * position's log-prob of the next token. The session is built per request and released after it: prompt
 * log-probs are asked for rarely (evaluation, KL checks), and a standing second copy of the weights would cost
 * memory on every server.
 */
import { buildTrainingGraph, OrtSession, type TensorValue } from '@rlhf/ml-engine';
import type { LoadedModel } from '@rlhf/service-kit';

/** Log-prob of ids[t] given ids[0..t) for t >= 1, in order (length ids.length - 1), for each prompt. */
export async function promptLogprobs(model: LoadedModel, prompts: readonly number[][]): Promise<number[][]> {
  const { config, weights } = model.model;
  const graph = buildTrainingGraph(config, { objective: 'logp' });
  const session = await OrtSession.create(graph.graph.toBytes());
  try {
    const weightFeeds: Record<string, TensorValue> = Object.fromEntries(
      graph.params.map((p) => [p.name, { data: weights.get(p.name) as Float32Array, dims: p.shape }]),
    );
    const out: number[][] = [];
    // One prompt a run: no padding, so each position sees exactly its prefix.
    for (const ids of prompts) {
      const seq = ids.length;
      const dims = [1, seq];
      // Position t carries the label of token t + 1; the last position has none (masked, label ignored).
      const labels = new BigInt64Array(seq);
      for (let t = 0; t + 1 < seq; t++) labels[t] = BigInt(ids[t + 1] as number);
      const lossMask = new Float32Array(seq).fill(1);
      lossMask[seq - 1] = 0;
      const r = await session.run(
        {
          ...weightFeeds,
          input_ids: { data: BigInt64Array.from(ids, (id) => BigInt(id)), dims },
          attention_mask: { data: new BigInt64Array(seq).fill(1n), dims },
          labels: { data: labels, dims },
          loss_mask: { data: lossMask, dims },
        },
        ['token_logps'],
      );
      const token = r.token_logps?.data as Float32Array;
      out.push(Array.from(token.subarray(0, seq - 1)));
    }
    return out;
  } finally {
    await session.dispose();
  }
}

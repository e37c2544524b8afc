/** Sequence log-probabilities of token rows under fixed weights (DPO references, evaluation, KL). */
import type { LlamaConfig } from '../model/config.js';
import type { Weights } from '../model/weights.js';
import { OrtSession } from '../runtime/ort-session.js';
import { lmFeeds } from './batches.js';
import type { Example } from './examples.js';
import { buildTrainingGraph } from './training-graph.js';

/** Sum of target-token log-probs of each row, in row order. */
export async function sequenceLogps(
  c: LlamaConfig,
  weights: Weights,
  rows: readonly Example[],
  padId: number,
  batchSize = 32,
): Promise<Float32Array> {
  const graph = buildTrainingGraph(c, { objective: 'logp' });
  const session = await OrtSession.create(graph.graph.toBytes());
  const out = new Float32Array(rows.length);
  try {
    const weightFeeds = Object.fromEntries(
      graph.params.map((p) => [p.name, { data: weights.get(p.name) as Float32Array, dims: p.shape }]),
    );
    for (let s = 0; s < rows.length; s += batchSize) {
      const r = await session.run({ ...weightFeeds, ...lmFeeds(rows.slice(s, s + batchSize), padId) }, [
        'sequence_logps',
      ]);
      out.set(r.sequence_logps?.data as Float32Array, s);
    }
  } finally {
    await session.dispose();
  }
  return out;
}

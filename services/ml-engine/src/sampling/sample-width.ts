/**
 * How many ids a sampler may pick from. A model's embedding may have more rows than its tokenizer has
 * tokens (vocabularies padded to a multiple of 64, or a tokenizer that learned fewer merges than asked):
 * the extra ids decode to nothing, so, as transformers masks them, they are never sampled. Sampling from
 * the first `sampleVocab` logits of a row is that mask: the rest get probability 0 and the log-probabilities
 * are normalised over the ids that can be picked.
 */
import { invalidInput } from '../engine-error.js';

export function sampleWidth(vocab: number, sampleVocab: number | undefined): number {
  if (sampleVocab === undefined) return vocab;
  if (!(Number.isInteger(sampleVocab) && sampleVocab >= 1 && sampleVocab <= vocab)) {
    throw invalidInput(
      `sampleVocab must be an integer in 1..${vocab} (the model's vocab_size), got ${sampleVocab}`,
      'sampleVocab',
    );
  }
  return sampleVocab;
}

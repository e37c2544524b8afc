/**
 * Two-label sequence classifiers as reward models. A classifier trained on preferred (label 1) against
 * not preferred (label 0) scores a response by r = logit[1] - logit[0], the log-odds of "preferred" (the
 * convention of RewardBench's pipelines for two-label reward models; docs/MODELS.md). HF's score head is
 * Linear(hidden, num_labels, bias=False) on the last token's hidden state h, so r = (w[1] - w[0]) . h:
 * exactly the one-row head of a num_labels 1 model whose weight is w[1] - w[0]. The import folds the head
 * so; the engine's scalar head then computes r unchanged, and an export writes the folded one-label model.
 */
import { invalidInput } from '../engine-error.js';
import type { HfTensor } from './hf-weights.js';

const scoreName = 'score.weight';

/** Labels a config.json declares: num_labels, else id2label's size (save_pretrained writes only the latter). */
function declaredLabels(raw: Record<string, unknown>): number | undefined {
  if (typeof raw.num_labels === 'number') return raw.num_labels;
  const names = raw.id2label;
  if (typeof names === 'object' && names !== null && !Array.isArray(names)) return Object.keys(names).length;
  return undefined;
}

/**
 * `raw` and `tensors` of a sequence-classification checkpoint with one label left as they are; with two,
 * the head folded into one row and num_labels 1. Anything else is refused naming num_labels.
 */
export function foldTwoLabelHead(
  raw: Record<string, unknown>,
  tensors: Map<string, HfTensor>,
  configFile: string,
): Record<string, unknown> {
  const arch = raw.architectures;
  if (!Array.isArray(arch) || !String(arch[0]).endsWith('ForSequenceClassification')) return raw;
  const score = tensors.get(scoreName);
  const labels = declaredLabels(raw) ?? score?.shape[0] ?? 1;
  if (score && score.shape[0] !== labels)
    throw invalidInput(
      `${configFile}: field "num_labels" is ${labels} but ${scoreName} has shape [${score.shape.join(', ')}]`,
      `${configFile}:num_labels`,
      'make num_labels (or id2label) match the score head the checkpoint was saved with',
    );
  if (labels === 1) return { ...raw, num_labels: 1 };
  if (labels !== 2 || !score)
    throw invalidInput(
      `${configFile}: field "num_labels" is ${labels}: a reward model has 1 label (the reward) or 2 (reward = logit[1] - logit[0])`,
      `${configFile}:num_labels`,
      'use a reward model with one or two labels; a classifier of more classes has no single reward',
    );
  const d = score.shape[1] as number;
  const folded = new Float32Array(d);
  for (let i = 0; i < d; i++) folded[i] = (score.data[d + i] as number) - (score.data[i] as number);
  tensors.set(scoreName, { ...score, shape: [1, d], data: folded });
  const { id2label: _names, label2id: _ids, ...rest } = raw;
  return { ...rest, num_labels: 1 };
}

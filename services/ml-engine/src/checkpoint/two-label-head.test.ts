import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HfTensor } from './hf-weights.js';
import { foldTwoLabelHead } from './two-label-head.js';

const score = (rows: number[][]): HfTensor => ({
  shape: [rows.length, rows[0]?.length ?? 0],
  data: Float32Array.from(rows.flat()),
  dtype: 'F32',
  file: 'model.safetensors',
});
const classifier = { architectures: ['LlamaForSequenceClassification'] };

test('two labels fold into one row, w[1] - w[0]; the labels are read from id2label when num_labels is absent', () => {
  const tensors = new Map([
    [
      'score.weight',
      score([
        [1, 2, 3],
        [4, 6, 8],
      ]),
    ],
  ]);
  const raw = foldTwoLabelHead(
    { ...classifier, id2label: { 0: 'rejected', 1: 'chosen' }, label2id: { rejected: 0, chosen: 1 } },
    tensors,
    'config.json',
  );
  assert.equal(raw.num_labels, 1);
  assert.ok(!('id2label' in raw) && !('label2id' in raw));
  assert.deepEqual(tensors.get('score.weight')?.shape, [1, 3]);
  assert.deepEqual([...(tensors.get('score.weight')?.data ?? [])], [3, 4, 5]);
});

test('one label and causal LMs are left as they are; other counts and mismatches are refused naming num_labels', () => {
  const one = new Map([['score.weight', score([[1, 2]])]]);
  assert.equal(foldTwoLabelHead({ ...classifier }, one, 'c.json').num_labels, 1);
  assert.deepEqual([...(one.get('score.weight')?.data ?? [])], [1, 2]);
  const lm = { architectures: ['LlamaForCausalLM'], num_labels: 2 };
  assert.equal(foldTwoLabelHead(lm, new Map(), 'c.json'), lm);
  const three = new Map([['score.weight', score([[1], [2], [3]])]]);
  assert.throws(
    () => foldTwoLabelHead({ ...classifier, num_labels: 3 }, three, 'c.json'),
    (e: unknown) =>
      (e as { field?: string }).field === 'c.json:num_labels' && /1 label .* or 2/.test((e as Error).message),
  );
  assert.throws(
    () => foldTwoLabelHead({ ...classifier, num_labels: 2 }, one, 'c.json'),
    (e: unknown) =>
      (e as { field?: string }).field === 'c.json:num_labels' &&
      /has shape \[1, 2\]/.test((e as Error).message),
  );
});

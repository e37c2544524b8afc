import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ScoreRequest, StartTrainingJobRequest } from '@rlhf/proto';
import { datasetRefSchema, invalidUtf8Fields, modelRefSchema, type WireSchema } from './utf8-fields.js';

const scoreSchema: WireSchema = {
  1: { name: 'model', message: modelRefSchema },
  2: {
    name: 'items',
    repeated: true,
    message: { 1: { name: 'prompt' }, 2: { name: 'responses', repeated: true } },
  },
};
const trainSchema: WireSchema = {
  1: { name: 'job_id' },
  5: { name: 'dataset', message: datasetRefSchema },
  9: { name: 'output_uri' },
  10: { name: 'labels', map: true },
};

/** The encoded message with every occurrence of the 2-byte `marker` replaced by a bad sequence. */
function spoil(bytes: Uint8Array, marker: string): Buffer {
  const out = Buffer.from(bytes);
  for (let at = out.indexOf(marker); at >= 0; at = out.indexOf(marker, at + 2)) {
    out[at] = 0xc3;
    out[at + 1] = 0x28;
  }
  return out;
}

test('invalid UTF-8 is found by path in nested, repeated and map fields; valid U+FFFD is not flagged', () => {
  const score = ScoreRequest.encode(
    ScoreRequest.fromPartial({
      model: { uri: 'file:///m', revision: 'r', digest: '' },
      items: [
        { prompt: 'fine \uFFFD', responses: ['a', 'b'] },
        { prompt: 'p', responses: ['ok', 'QQ', 'QQ too'] },
      ],
    }),
  ).finish();
  assert.deepEqual(invalidUtf8Fields(score, scoreSchema), [], 'a real U+FFFD is valid UTF-8');
  assert.deepEqual(invalidUtf8Fields(spoil(score, 'QQ'), scoreSchema), [
    'items[1].responses[1]',
    'items[1].responses[2]',
  ]);

  const train = StartTrainingJobRequest.encode(
    StartTrainingJobRequest.fromPartial({
      jobId: 'j',
      dataset: { uri: 'nats-obj://b/QQ', format: 0 },
      outputUri: 'file:///out',
      labels: { run: 'QQ', WWkey: 'v' },
    }),
  ).finish();
  assert.deepEqual(invalidUtf8Fields(spoil(train, 'QQ'), trainSchema), ['dataset.uri', 'labels[run]']);
  assert.deepEqual(invalidUtf8Fields(spoil(train, 'WW'), trainSchema), ['labels']);
  assert.deepEqual(
    invalidUtf8Fields(Buffer.from([0x0a, 0xff]), trainSchema),
    [],
    'malformed bytes: no report',
  );
});

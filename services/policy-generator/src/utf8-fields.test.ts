import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GenerateRequest } from '@rlhf/proto';
import { generateRequestSchema, invalidUtf8Fields } from './utf8-fields.js';

/** The encoded request with the two bytes of `marker` replaced by 0xff 0xfe (never valid UTF-8). */
function corrupt(req: GenerateRequest, marker: string): Uint8Array {
  const bytes = Buffer.from(GenerateRequest.encode(req).finish());
  const at = bytes.indexOf(marker);
  assert.ok(at >= 0, `marker ${marker} is in the bytes`);
  bytes[at] = 0xff;
  bytes[at + 1] = 0xfe;
  return bytes;
}

const base = GenerateRequest.fromPartial({
  model: { uri: 'nats-obj://models/p', revision: 'r1', digest: '' },
  prompts: ['one', 'two é', 'three \uFFFD'],
  n: 3,
  sampling: { temperature: 0.7, seed: 9, stop: ['.', '!'], stopTokenIds: [4, 5] },
  firstPromptIndex: 12,
});

test('valid text, U+FFFD included, has no invalid fields', () => {
  assert.deepEqual(invalidUtf8Fields(GenerateRequest.encode(base).finish(), generateRequestSchema), []);
});

test('invalid bytes are found by field path, in repeated and nested fields', () => {
  const withMarkers = GenerateRequest.fromPartial({
    ...base,
    model: { uri: 'nats-obj://models/AA', revision: '', digest: '' },
    prompts: ['one', 'two BB', 'three'],
    sampling: { ...base.sampling, stop: ['.', 'CC'] },
  });
  assert.deepEqual(invalidUtf8Fields(corrupt(withMarkers, 'BB'), generateRequestSchema), ['prompts[1]']);
  assert.deepEqual(invalidUtf8Fields(corrupt(withMarkers, 'AA'), generateRequestSchema), ['model.uri']);
  assert.deepEqual(invalidUtf8Fields(corrupt(withMarkers, 'CC'), generateRequestSchema), [
    'sampling.stop[1]',
  ]);
  // What the generated decoder makes of the same bytes: a U+FFFD, indistinguishable from real text.
  assert.match(GenerateRequest.decode(corrupt(withMarkers, 'BB')).prompts[1] as string, /\uFFFD/);
});

test('truncated bytes are left to the decoder', () => {
  const bytes = GenerateRequest.encode(base).finish();
  assert.deepEqual(invalidUtf8Fields(bytes.subarray(0, bytes.length - 3), generateRequestSchema), []);
});

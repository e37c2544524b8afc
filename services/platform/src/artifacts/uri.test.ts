import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RlhfError } from '../errors.js';
import { formatArtifactUri, joinArtifactUri, parseArtifactUri, parseWritableUri } from './uri.js';

test('nats-obj and file URIs parse and format back', () => {
  const obj = parseArtifactUri('nats-obj://rlhf-models/runs/ns/r/iter-1/train/model.onnx');
  assert.deepEqual(obj, {
    scheme: 'nats-obj',
    bucket: 'rlhf-models',
    key: 'runs/ns/r/iter-1/train/model.onnx',
  });
  assert.equal(formatArtifactUri(obj), 'nats-obj://rlhf-models/runs/ns/r/iter-1/train/model.onnx');
  assert.deepEqual(parseArtifactUri('file:///data/x.jsonl'), { scheme: 'file', path: '/data/x.jsonl' });
  assert.deepEqual(parseArtifactUri('/data/../data/x.jsonl'), { scheme: 'file', path: '/data/x.jsonl' });
  const s3 = parseArtifactUri('s3://my-models.eu/llama/sft/config.json');
  assert.deepEqual(s3, { scheme: 's3', bucket: 'my-models.eu', key: 'llama/sft/config.json' });
  assert.equal(formatArtifactUri(s3), 's3://my-models.eu/llama/sft/config.json');
  assert.equal(
    joinArtifactUri('nats-obj://b/runs/', '/iter-1/', 'a.jsonl'),
    'nats-obj://b/runs/iter-1/a.jsonl',
  );
});

test('bad URIs name the field and the accepted forms', () => {
  for (const bad of [
    's3://b/k',
    's3://Upper/k',
    's3://bucket',
    'gs://bucket/k',
    'nats-obj://b',
    'nats-obj://b/../k',
    'nats-obj://b d/k',
    'relative/path',
  ]) {
    assert.throws(
      () => parseArtifactUri(bad, 'spec.policy.model'),
      (e: unknown) =>
        e instanceof RlhfError &&
        /^spec\.policy\.model: .*nats-obj:\/\/<bucket>\/<key>, s3:\/\/<bucket>\/<key>, file:\/\/\/absolute\/path or \(to read a model\) hf:\/\//.test(
          e.describe(),
        ),
    );
  }
});

test('hf:// models parse and format back, and are refused as somewhere to write', () => {
  const hf = parseArtifactUri('hf://HuggingFaceTB/SmolLM2-135M@v1.0');
  assert.deepEqual(hf, { scheme: 'hf', repo: 'HuggingFaceTB/SmolLM2-135M', revision: 'v1.0' });
  assert.equal(formatArtifactUri(hf), 'hf://HuggingFaceTB/SmolLM2-135M@v1.0');
  assert.equal(formatArtifactUri(parseArtifactUri('hf://org/name')), 'hf://org/name');
  assert.throws(
    () => parseArtifactUri('hf://name', 'spec.policy.model'),
    (e: unknown) =>
      e instanceof RlhfError && /^spec\.policy\.model: .*hf:\/\/<org>\/<name>/.test(e.describe()),
  );
  assert.equal(parseWritableUri('s3://bucket/out/model', 'output').scheme, 's3');
  assert.throws(
    () => parseWritableUri('hf://org/name', 'output'),
    (e: unknown) =>
      e instanceof RlhfError && e.code === 'INVALID_ARGUMENT' && /^output: .*read-only/.test(e.describe()),
  );
});

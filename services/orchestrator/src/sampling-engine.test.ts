/**
 * Which server a sampling stage hands its shards to: the spec's for openai, the one the controller started
 * for the unit for vllm (read from the stage pod's environment), none for the built-in engine.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRunYaml } from '@rlhf/run-spec';
import { engineModelEnv, engineUrlEnv } from '@rlhf/workflow';
import { samplingEngineOf } from './model-stages.js';

const specWith = (extra: string) =>
  parseRunYaml(`apiVersion: rlhf.dev/v1alpha1
kind: RLHFRun
metadata: {name: r}
spec:
  policy: {model: nats-obj://m/sft}
  judge: {type: gold, task: sentiment}
  prompts: {dataset: nats-obj://d/p.jsonl}
${extra}`).spec;

test('built in: no server; openai: the spec names it', () => {
  assert.deepEqual(samplingEngineOf(specWith(''), 1, {}), {});
  const served = specWith('  engines: {generate: {type: openai, openai: {url: "http://gen:8000/v1"}}}\n');
  assert.deepEqual(samplingEngineOf(served, 2, {}), { openai: { url: 'http://gen:8000/v1', model: '' } });
});

test("vllm: the server the controller started for the unit, from the stage pod's environment", () => {
  const spec = specWith('  engines: {generate: {type: vllm}}\n');
  const env = { [engineUrlEnv]: 'http://vllm-r-1-generate.ns.svc:8000/v1', [engineModelEnv]: 'policy' };
  assert.deepEqual(samplingEngineOf(spec, 1, env), {
    openai: { url: 'http://vllm-r-1-generate.ns.svc:8000/v1', model: 'policy' },
  });
  assert.throws(
    () => samplingEngineOf(spec, 1, {}),
    /vllm: this stage has no vLLM server \(RLHF_GENERATE_ENGINE_URL is not set\)/,
  );
});

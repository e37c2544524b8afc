/**
 * `rlhf validate` on a valid run prints which engine runs each stage and where its GPUs go, one line per
 * stage: the worked 8B example of docs/KUBERNETES.md ("Running at scale"), the built-in CI run, and a run
 * handed to an OpenAI-compatible server with and without a fixed model.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli } from '../helpers/cli.js';

const repo = (p: string) => new URL(`../../${p}`, import.meta.url).pathname;
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-validate-engines-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** The engine lines: stage -> [engine, where]. */
function engineLines(stdout: string): Map<string, [string, string]> {
  const lines = stdout.split('\n');
  const at = lines.findIndex((l) => l.startsWith('engines ('));
  assert.ok(at >= 0, `no engines block in:\n${stdout}`);
  const out = new Map<string, [string, string]>();
  for (const l of lines.slice(at + 1)) {
    const m = /^ {2}(\S+)\s+(\S+)\s+(\S.*)$/.exec(l);
    if (m) out.set(m[1] as string, [m[2] as string, m[3] as string]);
  }
  return out;
}

test('the 8B example: vLLM for sampling, a TrainJob for DPO, the judge built in on CPU', async () => {
  const r = await runCli(['validate', '-f', repo('deploy/examples/llama3-8b-scale.yaml')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /valid RLHFRun llama3-8b-scale \(3 iterations, judge reward\)/);
  const lines = engineLines(r.stdout);
  assert.deepEqual([...lines.keys()], ['plan', 'baseline', 'generate', 'judge', 'pair', 'train', 'evaluate']);
  for (const stage of ['baseline', 'generate', 'evaluate']) {
    const [engine, where] = lines.get(stage) ?? [];
    assert.equal(engine, 'vllm', stage);
    assert.match(where ?? '', /vLLM server .* on spec\.placement\.generate \(1 GPU per replica\)/);
  }
  assert.match(lines.get('generate')?.[1] ?? '', /the stage pod none$/);
  assert.match(lines.get('evaluate')?.[1] ?? '', /scores the samples .* on CPU$/);
  assert.deepEqual(lines.get('train'), [
    'trainjob',
    'a Kubeflow TrainJob (1 node x 8 GPUs) on spec.placement.train; the stage pod none',
  ]);
  assert.deepEqual(lines.get('judge'), ['builtin', 'built in (reward-model), ONNX Runtime on CPU, no GPUs']);
});

test('a built-in run: every stage on CPU, none with GPUs', async () => {
  const r = await runCli(['validate', '-f', repo('examples/ci-small.yaml')]);
  assert.equal(r.code, 0, r.stderr);
  const lines = engineLines(r.stdout);
  assert.equal(lines.size, 12);
  for (const [stage, [engine, where]] of lines) {
    assert.equal(engine, 'builtin', stage);
    assert.match(where, /on CPU, no GPUs$/, stage);
  }
});

test('an OpenAI-compatible server: the policy URI by default; a fixed model is said to stay fixed', async () => {
  const spec = await readFile(repo('examples/ci-small.yaml'), 'utf8');
  const byUri = join(dir, 'by-uri.yaml');
  await writeFile(
    byUri,
    `${spec}  engines: {generate: {type: openai, openai: {url: "http://gen:8000/v1"}}}\n`,
  );
  const r = await runCli(['validate', '-f', byUri]);
  assert.equal(r.code, 0, r.stderr);
  const gen = engineLines(r.stdout).get('generate');
  assert.equal(gen?.[0], 'openai');
  assert.match(gen?.[1] ?? '', /http:\/\/gen:8000\/v1 \(model: the policy's URI/);
  const fixed = join(dir, 'fixed.yaml');
  await writeFile(
    fixed,
    `${spec}  engines: {generate: {type: openai, openai: {url: "http://gen:8000/v1", model: llama}}}\n`,
  );
  const f = await runCli(['validate', '-f', fixed]);
  assert.equal(f.code, 0, f.stderr);
  assert.match(
    engineLines(f.stdout).get('evaluate')?.[1] ?? '',
    /fixed model "llama" \(every iteration samples that model, never the trained policy\)/,
  );
  const judged = join(dir, 'judge.yaml');
  await writeFile(
    judged,
    `${spec}  engines: {judge: {type: openai, openai: {url: "http://rm/v1", model: rm}}}\n`,
  );
  const j = await runCli(['validate', '-f', judged]);
  assert.equal(j.code, 2);
  assert.match(
    j.stderr,
    /spec\.engines\.judge\.type: openai: the judge workers score with the reward-model service only/,
  );
});

/**
 * `rlhf run` end to end on the CI-sized run (examples/ci-small.yaml: the quickstart's code path with small
 * numbers): setup, the length-penalty fit and two online iterations over NATS workers, summary and report.
 * Then the same run SIGKILLed mid-stage and started again: it skips the finished stages, completes, and ends
 * with exactly the metrics of the uninterrupted run (same seed: every stage is deterministic, so a stage
 * computed again after the kill, or computed only once in either run, gives the same bits).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { headTypeOf, loadModelDir } from '@rlhf/ml-engine';
import { rlhfBin, runCli } from '../helpers/cli.js';

const example = new URL('../../examples/ci-small.yaml', import.meta.url).pathname;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-run-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Summary {
  initial: Record<string, number | null>;
  iterations: Array<Record<string, unknown>>;
  bestIteration: number | null;
  judge: { lengthPenalty: number | null };
  rewardModel?: { model?: string; heldOutAccuracy: number | null; labelBayesRate: number | null };
  samples: Array<Record<string, unknown>>;
}

const readSummary = async (out: string): Promise<Summary> =>
  JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Summary;

/**
 * The figures a resumed run must reproduce exactly (durations and timestamps differ by nature): pi_0's and
 * every iteration's proxy and gold reward, win rate, KL, mean length, grammatical rate, pairs, DPO loss and
 * accuracy, the fitted length penalty, the reward model's held-out accuracy, and the sampled pairs.
 */
const figures = (s: Summary) => ({
  initial: s.initial,
  lambda: s.judge.lengthPenalty,
  rm: s.rewardModel,
  iterations: s.iterations.map(({ durations: _d, ...rest }) => rest),
  samples: s.samples,
});

let uninterrupted: Summary;

test('the CI-sized run finishes two iterations and writes summary.json, report.html and charts', async () => {
  const out = join(dir, 'straight');
  const r = await runCli(['run', '-f', example, '--out', out], {}, 180_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /iteration 2\/2: proxy/);
  uninterrupted = await readSummary(out);
  assert.equal(uninterrupted.iterations.length, 2);
  for (const it of uninterrupted.iterations) {
    assert.ok((it.pairs as number) > 0, 'every iteration trained on pairs');
    assert.ok(Number.isFinite(it.kl as number) && Number.isFinite(it.dpoLoss as number));
    assert.match(
      it.policy as string,
      /^nats-obj:\/\/rlhf-artifacts\/runs\/default\/ci-small\/iter-\d\/models\/policy$/,
    );
  }
  assert.ok((uninterrupted.judge.lengthPenalty ?? -1) >= 0, 'lengthPenalty auto was fitted');
  assert.equal(typeof uninterrupted.rewardModel?.heldOutAccuracy, 'number');
  const html = await readFile(join(out, 'report.html'), 'utf8');
  assert.match(html, /<svg/);
  assert.ok(existsSync(join(out, 'charts', 'reward.svg')));
  // The trainers' scratch was under this run's output (each finished job removes its own directory).
  assert.ok(existsSync(join(out, 'work')), 'training scratch under <out>/work');
  // The run's models, ready to use: the best iteration's policy and the reward model setup trained.
  assert.equal(
    uninterrupted.rewardModel?.model,
    'nats-obj://rlhf-artifacts/runs/default/ci-small/iter-0/models/rm',
  );
  assert.match(r.stderr, new RegExp(`its policy in ${out}/models/policy`));
  assert.equal(headTypeOf((await loadModelDir(join(out, 'models', 'reward-model'))).config), 'scalar');
  const generated = await runCli([
    'generate',
    '--model',
    join(out, 'models', 'policy'),
    '--prompt',
    'the film',
    '--greedy',
  ]);
  assert.equal(generated.code, 0, generated.stderr);
  assert.equal((JSON.parse(generated.stdout) as { responses: string[] }).responses.length, 1);
});

test('a run SIGKILLed mid-stage resumes from its last finished stage and ends with the same metrics', async () => {
  const out = join(dir, 'killed');
  const child = spawn(process.execPath, [rlhfBin, 'run', '-f', example, '--out', out], {
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // Killed once iteration 1's training shard is out: mid-stage, with earlier stages recorded.
      if (/iteration 1 train/.test(stderr) && child.exitCode === null) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.once('exit', () => reject(new Error(`the run ended before it could be killed:\n${stderr}`)));
  });
  await new Promise((r) => child.once('exit', r));
  const again = await runCli(['run', '-f', example, '--out', out], {}, 180_000);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /iteration 1 judge: done in an earlier run \(skipped\)/);
  // Bit for bit: setup and iteration 1's first stages ran in the killed run, the rest after the restart,
  // and each must give what the uninterrupted run computed.
  const resumed = figures(await readSummary(out));
  assert.ok(resumed.iterations.every((it) => typeof it.kl === 'number' && typeof it.dpoLoss === 'number'));
  assert.deepEqual(resumed, figures(uninterrupted));
  for (const model of ['policy', 'initial-policy', 'reward-model']) {
    const onnx = (run: string) => readFile(join(dir, run, 'models', model, 'model.onnx'));
    assert.deepEqual(await onnx('killed'), await onnx('straight'), `models/${model}`);
  }
});

test('bad runs are refused before any stage runs, naming the field', async () => {
  const bad = join(dir, 'bad.yaml');
  await writeFile(
    bad,
    [
      'apiVersion: rlhf.dev/v1alpha1',
      'kind: RLHFRun',
      'metadata: {name: bad}',
      'spec:',
      '  policy: {model: file:///nonexistent/sft}',
      '  judge: {type: gold, task: sentiment}',
      '  prompts: {dataset: file:///nonexistent/prompts.jsonl}',
      '  dpo: {beta: 0}',
      '  generation: {topP: 2}',
    ].join('\n'),
  );
  const invalid = await runCli(['run', '-f', bad, '--out', join(dir, 'bad')]);
  assert.notEqual(invalid.code, 0);
  assert.match(invalid.stderr, /spec\.dpo\.beta: must be > 0/);
  assert.match(invalid.stderr, /spec\.generation\.topP: must be <= 1/);

  await writeFile(
    bad,
    (await readFile(bad, 'utf8')).replace('  dpo: {beta: 0}\n  generation: {topP: 2}', ''),
  );
  const missing = await runCli(['run', '-f', bad, '--out', join(dir, 'bad')], {}, 60_000);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /spec\.policy\.model/);
  assert.match(missing.stderr, /does not exist/);
  assert.doesNotMatch(missing.stderr, /generate/);
});

test('a preference-model judge trained by setup; a changed spec is refused until --restart, which starts over', async () => {
  const out = join(dir, 'pm');
  const file = join(dir, 'pm.yaml');
  const base = (await readFile(example, 'utf8'))
    .replace('name: ci-small', 'name: ci-pm')
    .replace('judge: { type: reward, lengthPenalty: auto }', 'judge: { type: preference, lengthPenalty: 0 }');
  assert.ok(base.includes('type: preference'), 'the example changed: update this test');
  // The default 96 positions cannot hold a prompt and two 24-token responses: the judge stage says so.
  await writeFile(file, base);
  const short = await runCli(['run', '-f', file, '--out', out], {}, 180_000);
  assert.notEqual(short.code, 0);
  assert.match(short.stderr, /comparison takes \d+ tokens, more than the model's 96 positions/);
  assert.match(short.stderr, /maxPositionEmbeddings/);

  await writeFile(
    file,
    base.replace(
      'rewardModel: { epochs: 1 }',
      'rewardModel: { epochs: 1 }\n    model: { maxPositionEmbeddings: 128 }',
    ),
  );
  const refused = await runCli(['run', '-f', file, '--out', out], {}, 60_000);
  assert.notEqual(refused.code, 0, refused.stderr);
  assert.match(refused.stderr, /different spec/);
  assert.match(refused.stderr, /--restart/);

  // --restart forgets the records and the artifacts: the SFT model is trained again with 128 positions
  // (a stale one at the same URI, or a shard deduplicated against the first attempt, would hang or fail).
  const r = await runCli(['run', '-f', file, '--out', out, '--restart'], {}, 180_000);
  assert.equal(r.code, 0, r.stderr);
  const s = (await readSummary(out)) as Summary & {
    judge: { type: string };
    preferenceModel?: { heldOutAccuracy: number };
  };
  assert.equal(s.judge.type, 'preference');
  assert.ok(typeof s.preferenceModel?.heldOutAccuracy === 'number', 'the PM held-out accuracy is reported');
  assert.equal(headTypeOf((await loadModelDir(join(out, 'models', 'preference-model'))).config), 'lm');
  assert.equal(s.iterations.length, 2);
});

test("a run on a chat model of one's own: chat prompts go through the policy's template in every stage", async () => {
  const out = join(dir, 'chat');
  const runCli0 = (args: string[]) => runCli(args, {}, 120_000);
  const data = join(dir, 'chat-data');
  assert.equal((await runCli0(['data', 'synth', 'sentiment', '--out', data, '--sft', '200'])).code, 0);
  // A policy, and a reward model of random weights that tells the responses apart (so there are pairs).
  const tiny = { hidden_size: 32, intermediate_size: 64, num_attention_heads: 4, num_key_value_heads: 2 };
  const init = async (name: string, config: object, tokenizer: string[]): Promise<string> => {
    await writeFile(join(dir, `${name}.json`), JSON.stringify({ ...tiny, num_hidden_layers: 1, ...config }));
    const r = await runCli0([
      'model',
      'init',
      '--config',
      join(dir, `${name}.json`),
      '--out',
      join(dir, name),
      ...tokenizer,
    ]);
    assert.equal(r.code, 0, r.stderr);
    return join(dir, name);
  };
  const policy = await init('chat-policy', { max_position_embeddings: 96 }, [
    '--tokenizer-corpus',
    join(data, 'corpus.txt'),
  ]);
  const rm = await init(
    'chat-rm',
    { max_position_embeddings: 96, architectures: ['LlamaForSequenceClassification'], num_labels: 1 },
    ['--tokenizer', join(policy, 'tokenizer.json')],
  );
  const configFile = join(policy, 'tokenizer_config.json');
  const template =
    '{% for m in messages %}<{{ m.role }}> {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}';
  await writeFile(
    configFile,
    JSON.stringify({ ...JSON.parse(await readFile(configFile, 'utf8')), chat_template: template }),
  );
  const chats = (n: number, from: number) =>
    Array.from({ length: n }, (_, i) =>
      JSON.stringify({
        messages: [{ role: 'user', content: ['the film', 'i really', 'the plot'][(from + i) % 3] }],
      }),
    ).join('\n');
  await writeFile(join(dir, 'chat-prompts.jsonl'), `${chats(16, 0)}\n`);
  await writeFile(join(dir, 'chat-eval.jsonl'), `${chats(4, 1)}\n`);
  const file = join(dir, 'chat.yaml');
  await writeFile(
    file,
    [
      'apiVersion: rlhf.dev/v1alpha1',
      'kind: RLHFRun',
      'metadata: {name: ci-chat}',
      'spec:',
      `  policy: {model: "file://${policy}"}`,
      `  judge: {type: reward, model: "file://${rm}", lengthPenalty: 0}`,
      `  prompts: {dataset: "file://${join(dir, 'chat-prompts.jsonl')}", eval: "file://${join(dir, 'chat-eval.jsonl')}", perIteration: 8}`,
      '  iterations: 1',
      '  generation: {samplesPerPrompt: 2, maxNewTokens: 8, seed: 3}',
      '  dpo: {learningRate: 1.0e-3, epochs: 1, batchSize: 8}',
    ].join('\n'),
  );
  const r = await runCli(['run', '-f', file, '--out', out], {}, 180_000);
  assert.equal(r.code, 0, r.stderr);
  const s = (await readSummary(out)) as Summary & { samples: Array<{ prompt: string }> };
  assert.equal(s.iterations.length, 1);
  assert.ok(s.samples.length > 0, 'pairs were built');
  for (const p of s.samples)
    assert.match(p.prompt, /^<user> (the film|i really|the plot)\n<assistant>$/, 'the rendered template');
  assert.equal(
    (await loadModelDir(join(out, 'models', 'policy'))).chatTemplate,
    template,
    'the trained policy keeps it',
  );
});

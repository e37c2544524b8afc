/**
 * The reference task's first steps as a user types them: synthesize data, create a model with a tokenizer
 * trained on the corpus, SFT it, sample from it, train a reward model and run DPO; and bad input answered
 * with one line naming the flag.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CliResult, runCli } from '../helpers/cli.js';

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, r.stderr);
  return r;
}

function userError(r: CliResult, ...patterns: RegExp[]): void {
  assert.equal(r.code, 2, r.stderr);
  for (const p of patterns) assert.match(r.stderr, p);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace for a user mistake');
}

describe('rlhf data synth, model init, train, generate', () => {
  let dir = '';
  const p = (name: string): string => join(dir, name);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rlhf-cli-'));
    ok(
      await runCli([
        'data',
        'synth',
        'sentiment',
        '--out',
        p('data'),
        '--sft',
        '400',
        '--prompts',
        '16',
        '--eval-prompts',
        '8',
        '--pairs',
        '200',
        '--eval-pairs',
        '50',
      ]),
    );
    await writeFile(
      p('cfg.json'),
      JSON.stringify({
        hidden_size: 32,
        intermediate_size: 64,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        num_hidden_layers: 1,
        max_position_embeddings: 96,
      }),
    );
    ok(
      await runCli([
        'model',
        'init',
        '--config',
        p('cfg.json'),
        '--out',
        p('sft0'),
        '--tokenizer-corpus',
        p('data/corpus.txt'),
        '--vocab-size',
        '320',
      ]),
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('trains SFT with a metrics log and samples from the result', async () => {
    const r = ok(
      await runCli([
        'train',
        'sft',
        '--model',
        p('sft0'),
        '--data',
        p('data/sft.jsonl'),
        '--out',
        p('sft'),
        '--lr',
        '3e-3',
        '--steps',
        '12',
        '--batch-size',
        '16',
      ]),
    );
    assert.match(r.stderr, /train sft: 12 steps over 400 examples/);
    const log = (await readFile(p('sft.metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; metrics: { loss: number } });
    assert.equal(log.length, 12);
    assert.ok((log.at(-1)?.metrics.loss as number) < (log[0]?.metrics.loss as number), 'loss falls');
    assert.ok(existsSync(p('sft/training_state/optimizer.safetensors')));
    assert.ok(existsSync(p('sft/training_log.jsonl')));
    assert.equal(existsSync(p('sft.partial')), false);

    const g = ok(
      await runCli([
        'generate',
        '--model',
        p('sft'),
        '--prompts',
        p('data/eval.jsonl'),
        '-n',
        '2',
        '--max-new-tokens',
        '16',
        '--seed',
        '3',
      ]),
    );
    const rows = g.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { prompt: string; responses: string[]; finish_reasons: string[] });
    assert.equal(rows.length, 8);
    for (const row of rows) assert.equal(row.responses.length, 2);
    const again = ok(
      await runCli([
        'generate',
        '--model',
        p('sft'),
        '--prompts',
        p('data/eval.jsonl'),
        '-n',
        '2',
        '--max-new-tokens',
        '16',
        '--seed',
        '3',
      ]),
    );
    assert.equal(again.stdout, g.stdout, 'same seed, same samples');
  });

  it('trains DPO from pairs against the starting policy', async () => {
    const r = ok(
      await runCli([
        'train',
        'dpo',
        '--model',
        p('sft0'),
        '--data',
        p('data/preferences.jsonl'),
        '--out',
        p('dpo'),
        '--lr',
        '1e-3',
        '--steps',
        '4',
        '--batch-size',
        '8',
        '--nll-weight',
        '1',
      ]),
    );
    assert.match(r.stderr, /train dpo: 4 steps over 200 examples/);
  });

  it('answers bad flags and data with one line naming the field', async () => {
    userError(
      await runCli([
        'train',
        'sft',
        '--model',
        p('sft0'),
        '--data',
        p('data/sft.jsonl'),
        '--out',
        p('x'),
        '--lr',
        'fast',
      ]),
      /--lr: expected a number, got "fast"/,
    );
    userError(
      await runCli(['train', 'sft', '--model', p('sft0'), '--data', p('nope.jsonl'), '--out', p('x')]),
      /nope\.jsonl/,
    );
    userError(
      await runCli(['train', 'sft', '--model', p('missing'), '--data', p('data/sft.jsonl'), '--out', p('x')]),
      /missing.*does not exist/,
    );
    userError(
      await runCli([
        'train',
        'sft',
        '--model',
        p('sft0'),
        '--data',
        p('data/sft.jsonl'),
        '--out',
        p('x'),
        '--epochs',
        '1',
        '--steps',
        '3',
      ]),
      /--steps: give --epochs or --steps, not both/,
    );
    userError(
      await runCli(['generate', '--model', p('sft0'), '--prompt', 'the movie', '--top-p', '1.5']),
      /--top-p/,
    );
    userError(
      await runCli(['generate', '--model', p('sft0'), '--prompt-ids', '[1, 99999]']),
      /99999.*outside the vocabulary/,
    );
    // A prompt too long for the model is named by its place in the file, before anything is sampled (the
    // 70th, in the second batch of 64).
    const prompts = Array.from({ length: 80 }, (_, i) => (i === 69 ? 'the film '.repeat(40) : 'the movie'));
    await writeFile(p('long.jsonl'), prompts.map((prompt) => `${JSON.stringify({ prompt })}\n`).join(''));
    const long = await runCli(['generate', '--model', p('sft0'), '--prompts', p('long.jsonl')]);
    userError(long, /prompts\[69\]: prompt 70 has \d+ tokens/);
    assert.doesNotMatch(long.stderr, /generate \[/, 'no batch was sampled');
    assert.equal(existsSync(p('x')), false);
  });
});

/**
 * Every dataset format of docs/DATA.md through the commands a user runs: `rlhf train dpo` and `rlhf train sft`
 * on TRL's preference and SFT types (standard and conversational, explicit and implicit prompt), UltraFeedback
 * rows, `rlhf generate` on prompt-only rows and `rlhf data pairs` on RLHFlow's judged rows, from JSONL and
 * from Parquet (written here with hyparquet-writer); and each command refusing another shape in one line that
 * names it and the fix.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { type CliResult, runCli } from '../helpers/cli.js';

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, r.stderr);
  return r;
}

function refused(r: CliResult, ...patterns: RegExp[]): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  for (const p of patterns) assert.match(r.stderr, p);
}

const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });
const jsonl = (rows: object[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');

/** A Parquet file of `rows` (all with the same fields), one column per field. */
function parquet(rows: Array<Record<string, unknown>>): Uint8Array {
  const names = Object.keys(rows[0] as object);
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: names.map((name) => ({ name, data: rows.map((r) => r[name]) as never })),
    }),
  );
}

// A template that shows where it was used: the conversational rows must come out through it.
const TEMPLATE =
  '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}';

describe('dataset formats through rlhf train, generate and data pairs', () => {
  let dir = '';
  const p = (name: string): string => join(dir, name);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rlhf-formats-cli-'));
    ok(await runCli(['data', 'synth', 'sentiment', '--out', p('data'), '--sft', '100']));
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
        p('model'),
        '--tokenizer-corpus',
        p('data/corpus.txt'),
        '--vocab-size',
        '300',
      ]),
    );
    await writeFile(p('model/chat_template.jinja'), TEMPLATE);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const train = (objective: 'dpo' | 'sft', data: string) =>
    runCli([
      'train',
      objective,
      '--model',
      p('model'),
      '--data',
      p(data),
      '--out',
      p(`out-${data}`),
      '--steps',
      '1',
      '--batch-size',
      '2',
    ]);

  it('rlhf train dpo reads every preference format, JSONL and Parquet', async () => {
    const q = user('the film was');
    const files: Record<string, Uint8Array | string> = {
      'explicit.jsonl': jsonl([
        { prompt: 'the film was', chosen: ' great', rejected: ' dull' },
        { prompt: 'the plot', chosen: ' moved', rejected: ' dragged' },
      ]),
      'implicit.jsonl': jsonl([
        { chosen: 'the film was great', rejected: 'the film was dull' },
        { chosen: 'the plot moved', rejected: 'the plot dragged' },
      ]),
      'explicit-chat.jsonl': jsonl([
        { prompt: [q], chosen: [assistant('great')], rejected: [assistant('dull')] },
        { prompt: [q], chosen: [assistant('fine')], rejected: [assistant('bad')] },
      ]),
      'implicit-chat.parquet': parquet([
        { chosen: [q, assistant('great')], rejected: [q, assistant('dull')] },
        { chosen: [q, assistant('fine')], rejected: [q, assistant('bad')] },
      ]),
      'ultrafeedback.parquet': parquet([
        {
          prompt: 'the film was',
          chosen: [q, assistant('great')],
          rejected: [q, assistant('dull')],
          score_chosen: 9,
          score_rejected: 2,
        },
        {
          prompt: 'the film was',
          chosen: [q, assistant('fine')],
          rejected: [q, assistant('bad')],
          score_chosen: 7,
          score_rejected: 3,
        },
      ]),
    };
    for (const [name, content] of Object.entries(files)) {
      await writeFile(p(name), content);
      const r = ok(await train('dpo', name));
      assert.match(r.stderr, /train dpo: 1 steps? over 2 examples/, name);
      assert.ok(existsSync(p(`out-${name}/model.onnx`)), name);
    }
  });

  it('rlhf train sft reads language-modeling and prompt-completion rows, JSONL and Parquet', async () => {
    const files: Record<string, Uint8Array | string> = {
      'text.jsonl': jsonl([{ text: 'the film was great' }, { text: 'the plot was dull' }]),
      'prompt-completion.jsonl': jsonl([
        { prompt: 'the film was', completion: ' great' },
        { prompt: 'the plot was', completion: ' dull' },
      ]),
      'messages.parquet': parquet([
        { messages: [user('the film?'), assistant('great')] },
        { messages: [user('the plot?'), assistant('dull')] },
      ]),
      'prompt-completion-chat.parquet': parquet([
        { prompt: [user('the film?')], completion: [assistant('great')] },
        { prompt: [user('the plot?')], completion: [assistant('dull')] },
      ]),
    };
    for (const [name, content] of Object.entries(files)) {
      await writeFile(p(name), content);
      assert.match(ok(await train('sft', name)).stderr, /train sft: 1 steps? over 2 examples/, name);
    }
  });

  it('rlhf generate reads prompt-only rows; a conversational prompt goes through the chat template', async () => {
    const generate = (data: string) =>
      runCli([
        'generate',
        '--model',
        p('model'),
        '--prompts',
        p(data),
        '--max-new-tokens',
        '2',
        '--seed',
        '1',
      ]);
    await writeFile(p('prompts.jsonl'), jsonl([{ prompt: 'the film' }, { prompt: 'the plot' }]));
    await writeFile(p('prompts-chat.parquet'), parquet([{ prompt: [user('the film?')], id: 'a' }]));
    const text = ok(await generate('prompts.jsonl'))
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { prompt: string });
    assert.deepEqual(
      text.map((r) => r.prompt),
      ['the film', 'the plot'],
    );
    const [row] = ok(await generate('prompts-chat.parquet'))
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { prompt: string; messages: unknown; id: string; responses: string[] });
    assert.equal(row?.prompt, '<|user|>the film?<|assistant|>');
    assert.deepEqual(row?.messages, [user('the film?')], 'kept for rlhf judge to render with its template');
    assert.equal(row?.id, 'a');
    assert.equal(row?.responses.length, 1);
  });

  it("rlhf data pairs pairs RLHFlow's {prompt, responses, rewards} rows from Parquet", async () => {
    await writeFile(
      p('rlhflow.parquet'),
      parquet([
        { prompt: 'the film', responses: ['great', 'dull', 'fine'], rewards: [2.5, -1, 0.5] },
        { prompt: 'the plot', responses: ['moved', 'dragged'], rewards: [-0.5, 1] },
      ]),
    );
    ok(await runCli(['data', 'pairs', '--data', p('rlhflow.parquet'), '--out', p('pairs.jsonl')]));
    const pairs = (await readFile(p('pairs.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string; margin: number });
    assert.deepEqual(pairs, [
      { prompt: 'the film', chosen: 'great', rejected: 'dull', margin: 3.5 },
      { prompt: 'the plot', chosen: 'dragged', rejected: 'moved', margin: 1.5 },
    ]);
    assert.match(ok(await train('dpo', 'pairs.jsonl')).stderr, /over 2 examples/);
  });

  it('each command refuses another shape or file in one line naming it and the fix', async () => {
    await writeFile(p('sft-rows.jsonl'), jsonl([{ prompt: 'a', completion: ' b' }]));
    await writeFile(p('pref-rows.parquet'), parquet([{ prompt: 'a', chosen: ' b', rejected: ' c' }]));
    await writeFile(p('odd.jsonl'), jsonl([{ question: 'q', answer: 'a' }]));
    await writeFile(p('rows.jsonl.gz'), gzipSync(jsonl([{ prompt: 'a' }])));
    refused(
      await train('dpo', 'sft-rows.jsonl'),
      /sft-rows\.jsonl:1:chosen: TRL prompt-completion \(standard\) row has no "chosen" \(a preference row needs "chosen" and "rejected"/,
    );
    refused(
      await train('sft', 'pref-rows.parquet'),
      /pref-rows\.parquet:row 1:completion: TRL preference \(explicit prompt, standard\) row has no completion to learn \(an SFT row needs "text", "messages"/,
    );
    refused(
      await runCli(['generate', '--model', p('model'), '--prompts', p('odd.jsonl')]),
      /odd\.jsonl:1:prompt: unknown \(fields "question", "answer"\) row has no prompt \(a prompt row needs "prompt"/,
    );
    refused(
      await runCli(['data', 'pairs', '--data', p('pref-rows.parquet'), '--out', p('never.jsonl')]),
      /pref-rows\.parquet:row 1:responses: TRL preference \(explicit prompt, standard\) row has no "responses" \(write one \{"prompt", "responses"/,
    );
    refused(
      await train('sft', 'rows.jsonl.gz'),
      /rows\.jsonl\.gz: a gzip-compressed file, not JSONL or Parquet \(decompress it first/,
    );
    assert.equal(existsSync(p('never.jsonl')), false);
  });
});

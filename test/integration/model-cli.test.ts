/** `rlhf model init|import|export` and `rlhf tokenize` as a user runs them. */
import assert from 'node:assert/strict';
import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModelDir } from '@rlhf/ml-engine';
import { ArtifactRouter, ArtifactSandbox, connectNats, createLogger } from '@rlhf/platform';
import { natsForTests } from '@rlhf/platform/testing';
import { publishModelDir } from '@rlhf/service-kit';
import { type CliResult, runCli } from '../helpers/cli.js';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

function assertOk(result: CliResult): void {
  assert.equal(result.code, 0, result.stderr);
}

function assertUserError(result: CliResult, ...patterns: RegExp[]): void {
  assert.equal(result.code, 2, result.stderr);
  assert.equal(result.stderr.trim().split('\n').length, 1, `one line: ${result.stderr}`);
  for (const p of patterns) assert.match(result.stderr, p);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace for a user mistake');
}

/** A few hundred review-like lines, enough for a few dozen BPE merges. */
function corpus(): string {
  const nouns = ['movie', 'plot', 'cast', 'ending', 'music'];
  const adjectives = ['great', 'dull', 'lovely', 'awful', 'superb', 'boring'];
  const lines: string[] = [];
  for (let i = 0; i < 300; i++) {
    lines.push(`the ${nouns[i % 5]} was ${adjectives[(i * 7) % 6]} and the ${nouns[(i * 3) % 5]} was fine`);
  }
  return `${lines.join('\n')}\n`;
}

describe('rlhf model and rlhf tokenize', () => {
  let root = '';
  let model = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'model-cli-'));
    model = join(root, 'base');
    await writeFile(join(root, 'corpus.txt'), corpus());
    await writeFile(
      join(root, 'tiny.yaml'),
      'hidden_size: 32\nintermediate_size: 64\nnum_hidden_layers: 2\nnum_attention_heads: 4\nnum_key_value_heads: 2\nmax_position_embeddings: 64\n',
    );
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('init trains a tokenizer on the corpus and writes a model directory', async () => {
    const result = await runCli([
      'model',
      'init',
      '--config',
      join(root, 'tiny.yaml'),
      '--tokenizer-corpus',
      join(root, 'corpus.txt'),
      '--vocab-size',
      '300',
      '--seed',
      '5',
      '--out',
      model,
    ]);
    assertOk(result);
    assert.match(
      result.stdout,
      /^initialised .*base: [\d,]+ parameters, vocab 300, 2 layers, hidden 32, lm head/,
    );
    assert.equal(result.stdout.trim().split('\n').length, 1);
    assert.deepEqual((await readdir(model)).sort(), [
      'config.json',
      'model.onnx',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const loaded = await loadModelDir(model);
    assert.equal(loaded.config.vocab_size, 300);
    assert.equal(loaded.tokenizer.vocabSize, 300);
  });

  it('tokenize encodes text as a JSON array and decodes it back', async () => {
    const encoded = await runCli([
      'tokenize',
      '--model',
      model,
      '--text',
      'the plot was superb',
      '--add-bos',
    ]);
    assertOk(encoded);
    const ids = JSON.parse(encoded.stdout) as number[];
    assert.equal(encoded.stdout, `${JSON.stringify(ids)}\n`);
    assert.equal(ids[0], 0, 'BOS first');
    assert.ok(ids.length < 'the plot was superb'.length, 'merges were learned');
    const decoded = await runCli(['tokenize', '--model', model, '--decode', JSON.stringify(ids.slice(1))]);
    assertOk(decoded);
    assert.equal(decoded.stdout, 'the plot was superb\n');
  });

  it("tokenize --special-tokens applies the tokenizer's own rule: ours puts BOS first", async () => {
    const args = ['tokenize', '--model', model, '--text', 'the plot'];
    const plain = JSON.parse((await runCli(args)).stdout) as number[];
    const special = await runCli([...args, '--special-tokens']);
    assertOk(special);
    assert.deepEqual(JSON.parse(special.stdout), [0, ...plain]);
  });

  it('init with a corpus that gives fewer tokens than vocab_size sizes the model to the tokenizer, and it generates', async () => {
    const small = join(root, 'small');
    await writeFile(
      join(root, 'big-vocab.yaml'),
      'hidden_size: 32\nnum_attention_heads: 4\nvocab_size: 4096\n',
    );
    const result = await runCli([
      'model',
      'init',
      '--config',
      join(root, 'big-vocab.yaml'),
      '--tokenizer-corpus',
      join(root, 'corpus.txt'),
      '--out',
      small,
    ]);
    assertOk(result);
    const loaded = await loadModelDir(small);
    assert.ok(loaded.tokenizer.vocabSize < 4096);
    assert.equal(loaded.config.vocab_size, loaded.tokenizer.vocabSize);
    assert.match(
      result.stderr,
      new RegExp(`vocab_size is ${loaded.tokenizer.vocabSize}, .* not the 4096 of`),
    );
    await writeFile(join(root, 'one-prompt.jsonl'), `${JSON.stringify({ prompt: 'the plot' })}\n`);
    const generated = await runCli([
      'generate',
      '--model',
      small,
      '--prompts',
      join(root, 'one-prompt.jsonl'),
      '--max-new-tokens',
      '8',
    ]);
    assertOk(generated);
  });

  it('export then import gives back identical weights and config', async () => {
    const hf = join(root, 'hf');
    assertOk(await runCli(['model', 'export', '--model', model, '--format', 'safetensors', '--out', hf]));
    assert.ok(await exists(join(hf, 'model.safetensors')));
    assert.ok(await exists(join(hf, 'generation_config.json')));
    const back = join(root, 'back');
    const imported = await runCli(['model', 'import', '--from', hf, '--out', back]);
    assertOk(imported);
    assert.match(imported.stdout, /^imported .*hf to .*back: [\d,]+ parameters, vocab 300/);
    const [a, b] = await Promise.all([loadModelDir(model), loadModelDir(back)]);
    assert.deepEqual(b.config, a.config);
    assert.deepEqual([...b.weights.keys()], [...a.weights.keys()]);
    for (const [name, data] of a.weights) assert.deepEqual(b.weights.get(name), data, name);
  });

  it("a checkpoint's chat template comes in with import, and rlhf generate renders chat prompts with it", async () => {
    const hf = join(root, 'hf');
    const file = join(hf, 'tokenizer_config.json');
    const template =
      '{{ bos_token }}{% for m in messages %}[{{ m.role | upper }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[ASSISTANT]{% endif %}';
    await writeFile(
      file,
      JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), chat_template: template }),
    );
    const chat = join(root, 'chat');
    assertOk(await runCli(['model', 'import', '--from', hf, '--out', chat]));
    await writeFile(
      join(root, 'messages.jsonl'),
      `${JSON.stringify({ messages: [{ role: 'user', content: 'the movie' }] })}\n`,
    );
    const generate = (dir: string) =>
      runCli([
        'generate',
        '--model',
        dir,
        '--prompts',
        join(root, 'messages.jsonl'),
        '--max-new-tokens',
        '4',
      ]);
    const templated = await generate(chat);
    assertOk(templated);
    assert.equal(
      (JSON.parse(templated.stdout) as { prompt: string }).prompt,
      '[USER] the movie\n[ASSISTANT]',
    );
    const plain = await generate(model);
    assertOk(plain);
    assert.equal(
      (JSON.parse(plain.stdout) as { prompt: string }).prompt,
      'the movie',
      'no template: the contents',
    );
    // Training keeps it: the trained model answers chat prompts the same way.
    await writeFile(join(root, 'sft.jsonl'), `${JSON.stringify({ text: 'the movie was fine' })}\n`);
    assertOk(
      await runCli([
        'train',
        'sft',
        '--model',
        chat,
        '--data',
        join(root, 'sft.jsonl'),
        '--out',
        join(root, 'chat-sft'),
        '--steps',
        '1',
      ]),
    );
    assert.equal((await loadModelDir(join(root, 'chat-sft'))).chatTemplate, template);
    // Conversational data (TRL's form) trains exactly as its text through the template: the same weights.
    const rows = (conversational: boolean) =>
      ['great', 'dull'].map((word) => {
        const messages = [{ role: 'user', content: `the ${word} movie` }];
        const answer = `it was ${word} .`;
        return JSON.stringify(
          conversational
            ? { messages: [...messages, { role: 'assistant', content: answer }] }
            : { prompt: `[USER] the ${word} movie\n[ASSISTANT]`, completion: answer },
        );
      });
    const pairs = (conversational: boolean) =>
      JSON.stringify(
        conversational
          ? {
              prompt: [{ role: 'user', content: 'the movie' }],
              chosen: [{ role: 'assistant', content: 'great .' }],
              rejected: [{ role: 'assistant', content: 'dull .' }],
            }
          : { prompt: '[USER] the movie\n[ASSISTANT]', chosen: 'great .', rejected: 'dull .' },
      );
    for (const [objective, data] of [
      ['sft', rows],
      ['dpo', (c: boolean) => [pairs(c)]],
    ] as const) {
      const onnx: Buffer[] = [];
      for (const conversational of [true, false]) {
        const file = join(root, `${objective}-${conversational}.jsonl`);
        await writeFile(file, `${data(conversational).join('\n')}\n`);
        const out = join(root, `chat-${objective}-${conversational}`);
        assertOk(
          await runCli([
            'train',
            objective,
            '--model',
            chat,
            '--data',
            file,
            '--out',
            out,
            '--steps',
            '2',
            '--lr',
            '0.01',
          ]),
        );
        onnx.push(await readFile(join(out, 'model.onnx')));
      }
      assert.ok((onnx[0] as Buffer).equals(onnx[1] as Buffer), `${objective}: messages train as their text`);
    }
    // Export writes it back where transformers reads it.
    assertOk(await runCli(['model', 'export', '--model', chat, '--out', join(root, 'chat-hf')]));
    const exported = JSON.parse(await readFile(join(root, 'chat-hf', 'tokenizer_config.json'), 'utf8'));
    assert.equal(exported.chat_template, template);
  });

  it('bad input exits 2 with one line naming the flag or field, and writes nothing', async () => {
    const out = join(root, 'never');
    assertUserError(
      await runCli(['model', 'export', '--model', model, '--format', 'gguf', '--out', out]),
      /--format: unknown format "gguf"/,
      /safetensors/,
    );
    await writeFile(join(root, 'typo.json'), JSON.stringify({ hidden_size: 32, num_hiden_layers: 1 }));
    assertUserError(
      await runCli([
        'model',
        'init',
        '--config',
        join(root, 'typo.json'),
        '--tokenizer',
        model,
        '--out',
        out,
      ]),
      /typo\.json: field "num_hiden_layers" is not a Llama config field \(did you mean num_hidden_layers\?\)/,
    );
    assertUserError(
      await runCli([
        'model',
        'init',
        '--config',
        join(root, 'tiny.yaml'),
        '--tokenizer-corpus',
        join(root, 'corpus.txt'),
        '--vocab-size',
        'lots',
        '--out',
        out,
      ]),
      /--vocab-size: expected an integer, got "lots"/,
    );
    assertUserError(
      await runCli(['tokenize', '--model', model, '--decode', '[0, 4000]']),
      /--decode: token id 4000 is outside the vocabulary .* \(vocab size 300\)/,
    );
    assertUserError(
      await runCli(['model', 'import', '--from', join(root, 'no-such-checkpoint'), '--out', out]),
      /no-such-checkpoint\/config\.json does not exist/,
    );
    assert.equal(await exists(out), false);
    assert.deepEqual(
      (await readdir(root)).filter((f) => f.startsWith('never')),
      [],
    );
  });

  it('pull copies a model out of the artifact store; a bad --from or a missing model is one clear line', async () => {
    const nats = await natsForTests();
    const nc = await connectNats({
      url: nats.url,
      name: 'model-cli-test',
      logger: createLogger('t', { level: 'warn' }),
    });
    try {
      const uri = 'nats-obj://rlhf-artifacts/runs/default/demo/iter-1/models/policy';
      await publishModelDir(new ArtifactRouter(nc, ArtifactSandbox.unrestricted()), model, uri);
      const out = join(root, 'pulled');
      const pull = (...extra: string[]) => runCli(['model', 'pull', '--nats-url', nats.url, ...extra]);
      const result = await pull('--from', uri, '--out', out);
      assertOk(result);
      assert.match(result.stdout, /pulled nats-obj:\/\/rlhf-artifacts\/.*\/policy to .*pulled/);
      const [a, b] = await Promise.all([loadModelDir(model), loadModelDir(out)]);
      assert.deepEqual(b.config, a.config);
      assert.deepEqual(b.weights, a.weights);
      const again = await pull('--from', uri, '--out', out);
      assert.equal(again.code, 1, 'ALREADY_EXISTS, as for the other commands writing --out');
      assert.match(
        again.stderr,
        /^error: --out: refusing to overwrite .*pass --overwrite to replace it\)\n$/,
      );
      assertOk(await pull('--from', uri, '--out', out, '--overwrite'));
      assertUserError(
        await pull('--from', model, '--out', join(root, 'never-pulled')),
        /--from/,
        /nats-obj:\/\//,
      );
      assertUserError(
        await pull(
          '--from',
          'nats-obj://rlhf-artifacts/runs/default/demo/iter-9/models/policy',
          '--out',
          join(root, 'never-pulled'),
        ),
        /^error: --from: no model at .*iter-9\/models\/policy/,
      );
      assert.equal(await exists(join(root, 'never-pulled')), false);
    } finally {
      await nc.close();
      await nats.stop();
    }
  });
});

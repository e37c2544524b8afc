/**
 * A checkpoint above protobuf's 2 GiB: a random float32 Llama of 869 M parameters (3.24 GiB; 3 layers of
 * hidden 4096, vocab 32000, untied) imports with `rlhf model import` (weights in model.onnx.data), generates
 * a token with `rlhf generate`, and exports with `rlhf model export --dtype bfloat16 --max-shard-size 1GB`.
 * Then a 333 M-parameter model (1.24 GiB, also out of line) takes one SGD step with `rlhf train sft`. Each
 * command's peak resident memory (VmHWM) is printed; docs/MODELS.md quotes them. It takes 5-8 minutes and
 * ~12 GB of disk under the temporary directory.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeModel, MODEL_DATA_FILE } from '@rlhf/ml-engine';
import { type CliResult, runCli } from '../helpers/cli.js';
import { writeRandomCheckpoint } from './random-checkpoint.js';

/** Streamed, so the test process never holds a data file. */
async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const reporter = fileURLToPath(new URL('../helpers/report-peak-memory.mjs', import.meta.url));
const SHAPE = {
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 3,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  vocab_size: 32000,
  tie_word_embeddings: false,
};
const GiB = 2 ** 30;

let dir = '';
const peaks: Record<string, number> = {};

/** Runs an rlhf command with its peak memory recorded under `label`. */
async function measured(label: string, args: string[]): Promise<CliResult> {
  const started = Date.now();
  const r = await runCli(args, { NODE_OPTIONS: `--import ${reporter}`, RLHF_ORT_THREADS: '2' }, 280_000);
  assert.equal(r.code, 0, r.stderr);
  const m = /peak-rss-kb (\d+)/.exec(r.stderr);
  assert.ok(m, `no peak memory report in ${r.stderr}`);
  peaks[label] = Number(m[1]) * 1024;
  console.log(
    `${label}: peak RSS ${(peaks[label] / GiB).toFixed(2)} GiB, ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  return r;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'large-model-'));
  await writeRandomCheckpoint(join(dir, 'hf'), SHAPE, join(dir, 'scratch'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('a 3 GiB checkpoint', () => {
  test('imports with its weights in model.onnx.data', async () => {
    const checkpoint = (await stat(join(dir, 'hf', 'model.safetensors'))).size;
    assert.ok(checkpoint > 3 * GiB, `${checkpoint} bytes`);
    await measured('import', ['model', 'import', '--from', join(dir, 'hf'), '--out', join(dir, 'model')]);
    const onnx = await readFile(join(dir, 'model', 'model.onnx'));
    assert.ok(onnx.length < 16 * 2 ** 20, `model.onnx is ${onnx.length} bytes`);
    const data = (await stat(join(dir, 'model', MODEL_DATA_FILE))).size;
    assert.ok(data >= checkpoint - 2 ** 20, `model.onnx.data is ${data} bytes`);
    assert.ok(decodeModel(new Uint8Array(onnx)).graph.initializer.length > 0);
    // Held once, not three or four times: the weights plus a runtime's worth.
    assert.ok((peaks.import as number) < checkpoint + 1.5 * GiB, `import peak ${peaks.import}`);
  });

  test('generates a token', async () => {
    const r = await measured('generate', [
      'generate',
      '--model',
      join(dir, 'model'),
      '--prompt',
      'the movie was',
      '--max-new-tokens',
      '1',
      '--greedy',
    ]);
    const row = JSON.parse(r.stdout.trim().split('\n').at(-1) as string);
    assert.equal(row.response_ids[0].length, 1);
    assert.ok(row.response_ids[0][0] < 300, 'a token the tokenizer has (padded ids are masked)');
  });

  test('exports as sharded bfloat16', async () => {
    await measured('export', [
      'model',
      'export',
      '--model',
      join(dir, 'model'),
      '--out',
      join(dir, 'export'),
      '--dtype',
      'bfloat16',
      '--max-shard-size',
      '1GB',
    ]);
    const files = (await readdir(join(dir, 'export'))).sort();
    assert.ok(files.includes('model.safetensors.index.json'), files.join(' '));
    const index = JSON.parse(await readFile(join(dir, 'export', 'model.safetensors.index.json'), 'utf8'));
    const shards = files.filter((f) => f.endsWith('.safetensors'));
    assert.equal(shards.length, 2);
    let total = 0;
    for (const f of shards) total += (await stat(join(dir, 'export', f))).size;
    assert.ok(total > index.metadata.total_size && total < index.metadata.total_size + 2 ** 20);
    const config = JSON.parse(await readFile(join(dir, 'export', 'config.json'), 'utf8'));
    assert.equal(config.torch_dtype, 'bfloat16');
  });
});

/** 333 M parameters (1.24 GiB, above the inline limit): training reads and writes model.onnx.data. */
const TRAIN_SHAPE = { ...SHAPE, hidden_size: 2048, intermediate_size: 5504, num_hidden_layers: 4 };

describe('training a model with external data', () => {
  test('imports a 1.24 GiB checkpoint', async () => {
    await rm(join(dir, 'hf'), { recursive: true, force: true });
    await writeRandomCheckpoint(join(dir, 'hf-train'), TRAIN_SHAPE, join(dir, 'scratch-train'));
    await measured('import (1.24 GiB)', [
      'model',
      'import',
      '--from',
      join(dir, 'hf-train'),
      '--out',
      join(dir, 'train-base'),
    ]);
    assert.ok((await readdir(join(dir, 'train-base'))).includes(MODEL_DATA_FILE));
  });

  test('takes an SGD step and writes the result with its weights in model.onnx.data', async () => {
    const data = join(dir, 'sft.jsonl');
    await writeFile(data, `${JSON.stringify({ prompt: 'the movie was', completion: ' great fun' })}\n`);
    await measured('train sft, sgd (1.24 GiB)', [
      'train',
      'sft',
      '--model',
      join(dir, 'train-base'),
      '--data',
      data,
      '--out',
      join(dir, 'trained'),
      // SGD: AdamW's two moment buffers would add 2.5 GiB to the 6.7 GiB this step takes (docs/MODELS.md).
      '--optimizer',
      'sgd',
      '--steps',
      '1',
      '--batch-size',
      '1',
      // Without warmup: one step of the default schedule would have a learning rate of 0.
      '--schedule',
      'constant',
      '--warmup-ratio',
      '0',
      '--lr',
      '0.1',
    ]);
    assert.ok((await readdir(join(dir, 'trained'))).includes(MODEL_DATA_FILE));
    const [base, trained] = [join(dir, 'train-base', MODEL_DATA_FILE), join(dir, 'trained', MODEL_DATA_FILE)];
    assert.equal((await stat(trained)).size, (await stat(base)).size);
    assert.notEqual(await sha256(trained), await sha256(base), 'the step changed the weights');
  });
});

/**
 * `rlhf model export --dtype` and `--max-shard-size` checked against transformers and torch: half-precision
 * exports hold exactly torch's own round-to-nearest-even cast of every weight and load in their dtype; a
 * sharded export has save_pretrained's layout, loads in from_pretrained and imports back bit for bit.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { f32ToBf16, f32ToF16, loadModelDir, saveModelDir } from '@rlhf/ml-engine';
import { tinyModel } from '@rlhf/ml-engine/test-model';
import { runCli } from '../helpers/cli.js';
import { runReferencePython } from '../helpers/python-env.js';

interface Report {
  bfloat16: DtypeReport;
  float16: DtypeReport;
  sharded: { class: string; max_logit_diff: number };
  edges: { f32_bits: number[]; bf16: number[]; f16: number[] };
}
interface DtypeReport {
  loaded_dtype: string;
  weights_equal_torch_cast: boolean;
  max_logit_diff: number;
  max_abs_logit: number;
}

let dir = '';
let report: Report;
const model = tinyModel({ hidden_size: 64, intermediate_size: 128, num_attention_heads: 4 }, 11);
const out = (name: string) => join(dir, name);

async function exportAs(name: string, ...flags: string[]): Promise<void> {
  const r = await runCli(['model', 'export', '--model', out('model'), '--out', out(name), ...flags]);
  assert.equal(r.code, 0, r.stderr);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'export-dtypes-'));
  await saveModelDir(out('model'), model);
  await exportAs('f32');
  await exportAs('bf16', '--dtype', 'bfloat16');
  await exportAs('f16', '--dtype', 'float16');
  // 40 kB shards: the 300x64 embedding (76.8 kB) gets a shard of its own, layers share theirs.
  await exportAs('sharded', '--max-shard-size', '40kB');
  report = JSON.parse(
    runReferencePython('test/hf/check_dtype_exports.py', [
      out('f32'),
      out('bf16'),
      out('f16'),
      out('sharded'),
    ]),
  );
});
after(() => rm(dir, { recursive: true, force: true }));

describe('export dtypes', () => {
  for (const dtype of ['bfloat16', 'float16'] as const) {
    test(`${dtype}: torch's own cast of every weight, loaded as ${dtype}, logits within its precision`, async () => {
      const r = report[dtype];
      assert.equal(r.weights_equal_torch_cast, true);
      assert.equal(r.loaded_dtype, dtype);
      // bf16 keeps 8 significant bits, f16 11: the logits move by a few of their units at most.
      const tolerance = dtype === 'bfloat16' ? 0.05 : 0.01;
      assert.ok(r.max_logit_diff <= tolerance * Math.max(1, r.max_abs_logit), JSON.stringify(r));
      assert.ok(r.max_logit_diff > 0, 'rounding changed something');
      const config = JSON.parse(
        await readFile(join(out(dtype === 'bfloat16' ? 'bf16' : 'f16'), 'config.json'), 'utf8'),
      );
      assert.equal(config.torch_dtype, dtype);
      assert.equal(config.dtype, dtype);
    });
  }

  test('rounding matches torch on ties, overflow, subnormals and infinities', () => {
    const { f32_bits, bf16, f16 } = report.edges;
    const values = [...new Float32Array(Uint32Array.from(f32_bits).buffer)];
    assert.deepEqual(values.map(f32ToBf16), bf16);
    assert.deepEqual(values.map(f32ToF16), f16);
  });

  test('a bfloat16 export imports back as the rounded weights', async () => {
    const r = await runCli(['model', 'import', '--from', out('bf16'), '--out', out('bf16-back')]);
    assert.equal(r.code, 0, r.stderr);
    const back = await loadModelDir(out('bf16-back'));
    const widen = new Float32Array(1);
    const bits = new Uint32Array(widen.buffer);
    for (const [name, data] of model.weights) {
      const got = back.weights.get(name) as Float32Array;
      for (let i = 0; i < data.length; i += 97) {
        bits[0] = f32ToBf16(data[i] as number) << 16;
        assert.equal(got[i], widen[0], `${name}[${i}]`);
      }
    }
  });
});

describe('sharded export', () => {
  test("has save_pretrained's layout", async () => {
    const files = (await readdir(out('sharded'))).filter((f) => f.includes('safetensors')).sort();
    const shards = files.filter((f) => f.endsWith('.safetensors'));
    assert.ok(shards.length >= 3, files.join(' '));
    const n = String(shards.length).padStart(5, '0');
    assert.deepEqual(
      shards,
      shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${n}.safetensors`),
    );
    assert.ok(files.includes('model.safetensors.index.json'));
    assert.ok(!files.includes('model.safetensors'));
    const index = JSON.parse(await readFile(join(out('sharded'), 'model.safetensors.index.json'), 'utf8'));
    const total = [...model.weights.values()].reduce((n, w) => n + w.byteLength, 0);
    assert.equal(index.metadata.total_size, total);
    assert.deepEqual(Object.keys(index.weight_map).sort(), [...model.weights.keys()].sort());
    assert.deepEqual([...new Set(Object.values(index.weight_map))].sort(), shards);
  });

  test('loads in from_pretrained as the same model', () => {
    assert.equal(report.sharded.class, 'LlamaForCausalLM');
    assert.equal(report.sharded.max_logit_diff, 0);
  });

  test('imports back bit for bit', async () => {
    const r = await runCli(['model', 'import', '--from', out('sharded'), '--out', out('sharded-back')]);
    assert.equal(r.code, 0, r.stderr);
    const back = await loadModelDir(out('sharded-back'));
    for (const [name, data] of model.weights) assert.deepEqual(back.weights.get(name), data, name);
  });

  test('refuses a shard size it cannot read, naming the flag', async () => {
    const r = await runCli([
      'model',
      'export',
      '--model',
      out('model'),
      '--out',
      out('bad'),
      '--max-shard-size',
      '5 parsecs',
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--max-shard-size/);
    const d = await runCli([
      'model',
      'export',
      '--model',
      out('model'),
      '--out',
      out('bad'),
      '--dtype',
      'int8',
    ]);
    assert.notEqual(d.code, 0);
    assert.match(d.stderr, /--dtype.*int8|int8.*--dtype/s);
  });
});

/**
 * A random float32 Hugging Face Llama checkpoint of any size, written tensor by tensor (one reusable buffer,
 * so making a 3 GiB checkpoint takes a few MB of memory): `config.json` with the given shape, the tokenizer
 * files of the small test model (its 300 tokens under a padded vocab_size, which generation masks), and one
 * `model.safetensors`.
 */
import { copyFile, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  exportHfCheckpoint,
  type LlamaConfig,
  parseLlamaConfig,
  saveModelDir,
  weightSpecs,
} from '@rlhf/ml-engine';
import { tinyModel } from '@rlhf/ml-engine/test-model';

/** xorshift32 values uniform in [-scale, scale): fast enough for ~10^9 of them. */
function fillRandom(out: Float32Array, seed: number, scale: number): number {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 2 ** 32 - 0.5) * 2 * scale;
  }
  return s >>> 0;
}

export async function writeRandomCheckpoint(
  dir: string,
  shape: Partial<LlamaConfig>,
  scratch: string,
): Promise<LlamaConfig> {
  await mkdir(dir, { recursive: true });
  const tiny = tinyModel();
  await saveModelDir(join(scratch, 'tiny'), tiny);
  await exportHfCheckpoint(join(scratch, 'tiny'), join(scratch, 'tiny-hf'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json'])
    await copyFile(join(scratch, 'tiny-hf', f), join(dir, f));
  const raw = { ...JSON.parse(await readFile(join(scratch, 'tiny-hf', 'config.json'), 'utf8')), ...shape };
  const config = parseLlamaConfig(structuredClone(raw));
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(raw, null, 2)}\n`);

  const specs = weightSpecs(config);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const s of specs) {
    const bytes = 4 * s.shape.reduce((a, b) => a * b, 1);
    header[s.name] = { dtype: 'F32', shape: s.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - ((Buffer.byteLength(text) + 8) % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  const file = await open(join(dir, 'model.safetensors'), 'w');
  try {
    await file.write(length);
    await file.write(text);
    const chunk = new Float32Array(1 << 22);
    let seed = 12345;
    for (const s of specs) {
      let left = s.shape.reduce((a, b) => a * b, 1);
      // Norm weights near 1, as trained models have them; everything else small.
      const norm = s.shape.length === 1;
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        const part = chunk.subarray(0, n);
        seed = fillRandom(part, seed, norm ? 0.1 : 0.02);
        if (norm) for (let i = 0; i < n; i++) part[i] = 1 + (part[i] as number);
        await file.write(new Uint8Array(part.buffer, 0, n * 4));
        left -= n;
      }
    }
  } finally {
    await file.close();
  }
  return config;
}

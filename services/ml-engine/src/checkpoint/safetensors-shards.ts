/**
 * Sharded safetensors as `save_pretrained` writes them (huggingface_hub's split_state_dict_into_shards):
 * tensors taken in model order fill a shard until the next would push it past the maximum; a tensor larger
 * than the maximum gets a shard of its own. Shards are `model-0000i-of-0000n.safetensors`, listed by
 * `model.safetensors.index.json` (`metadata.total_size`, `weight_map`: tensor name -> shard). A checkpoint
 * that fits one shard is a single `model.safetensors` with no index, as Hugging Face writes it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidInput } from '../engine-error.js';
import { INDEX_FILE, SINGLE_FILE } from './hf-weights.js';
import { prettyJson } from './json-file.js';
import { BYTES_PER_VALUE, type F32Source, type SafetensorsDtype, writeSafetensors } from './safetensors.js';

/** Hugging Face's default `max_shard_size`. */
export const DEFAULT_MAX_SHARD_SIZE = '5GB';

const UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
  TIB: 2 ** 40,
};

/** "5GB" (10^9, as HF reads it), "2GiB" (2^30), "500MB", or a byte count; `field` names the flag in errors. */
export function parseShardSize(text: string, field: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$/i.exec(text);
  const unit = UNITS[(m?.[2] ?? 'B').toUpperCase()];
  const bytes = m && unit ? Math.floor(Number(m[1]) * unit) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1)
    throw invalidInput(
      `${field} must be a size such as 5GB, 500MB or 2GiB, got ${JSON.stringify(text)}`,
      field,
      'pass a positive size; GB means 10^9 bytes and GiB 2^30, as in transformers',
    );
  return bytes;
}

/** Tensor names per shard, in model order. */
export function planShards(
  order: readonly string[],
  bytesOf: (name: string) => number,
  maxShardBytes: number,
): string[][] {
  const shards: string[][] = [];
  let current: string[] = [];
  let size = 0;
  for (const name of order) {
    const bytes = bytesOf(name);
    if (bytes > maxShardBytes) {
      shards.push([name]);
      continue;
    }
    if (current.length && size + bytes > maxShardBytes) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(name);
    size += bytes;
  }
  if (current.length) shards.push(current);
  return shards;
}

export const shardName = (i: number, n: number) =>
  `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;

/**
 * Writes `tensors` (iterated in model order) into `dir` as `dtype`, sharded at `maxShardBytes`; returns the
 * files written. Tensors are loaded (when lazy) and converted one at a time as they are written.
 */
export async function writeShardedSafetensors(
  dir: string,
  tensors: Map<string, F32Source>,
  dtype: SafetensorsDtype,
  maxShardBytes: number,
): Promise<string[]> {
  const count = (t: F32Source) => ('data' in t ? t.data.length : t.length);
  const bytesOf = (name: string) => count(tensors.get(name) as F32Source) * BYTES_PER_VALUE[dtype];
  const shards = planShards([...tensors.keys()], bytesOf, maxShardBytes);
  // transformers refuses safetensors files without a `format` entry in the metadata.
  const metadata = { format: 'pt' };
  if (shards.length <= 1) {
    await writeSafetensors(join(dir, SINGLE_FILE), tensors, metadata, dtype);
    return [SINGLE_FILE];
  }
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  for (const [i, names] of shards.entries()) {
    const file = shardName(i, shards.length);
    await writeSafetensors(
      join(dir, file),
      new Map(names.map((n) => [n, tensors.get(n) as F32Source])),
      metadata,
      dtype,
    );
    for (const n of names) weightMap[n] = file;
    files.push(file);
  }
  const totalSize = [...tensors.keys()].reduce((n, name) => n + bytesOf(name), 0);
  const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)));
  await writeFile(
    join(dir, INDEX_FILE),
    prettyJson({ metadata: { total_size: totalSize }, weight_map: sortedMap }),
  );
  return [...files, INDEX_FILE];
}
